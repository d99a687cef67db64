"""The commands start without the training machinery: no Lightning or W&B on import, and a
``--help`` that lists the options (their times: ``benchmarks/startup.py``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TRAINING_ONLY, loaded_after

COMMANDS = ("ganlab.sample", "ganlab.evaluate", "ganlab.translate", "ganlab.report")


@pytest.mark.parametrize("module", [*COMMANDS, "ganlab.report.__main__"])
def test_commands_import_no_training_machinery(module):
    assert loaded_after(f"import {module}") == []


def test_a_data_target_is_checked_without_importing_it():
    """A checkpoint's data ``_target_`` is trusted by where its source defines the class."""
    code = (
        "from ganlab.trust import is_trusted\n"
        "assert is_trusted('ganlab.data.images.Digits')\n"
        "assert is_trusted('ganlab.data.folder.ImageFolder')\n"
        "assert not is_trusted('ganlab.data.folder.Path')\n"
        "assert not is_trusted('ganlab.data.folder.Image.open')\n"
    )
    assert loaded_after(code) == []


def test_training_help_imports_no_training_machinery():
    """``python -m ganlab --help`` is Hydra's help: the config, without Lightning or torch."""
    code = (
        "import runpy\nsys.argv = ['ganlab', '--help']\nrunpy.run_module('ganlab', {}, '__main__')"
    )
    assert loaded_after(code, (*TRAINING_ONLY, "torch")) == []


@pytest.mark.parametrize(
    ("module", "options"),
    [
        ("ganlab.sample", ["ckpt=PATH (required)", "n=64", "out=samples.png", "class=None"]),
        ("ganlab.evaluate", ["ckpt=PATH (required)", "metrics=fid,kid,is,pr,modes", "n=10000"]),
        ("ganlab.translate", ["input=FOLDER (required)", "out=translated", "direction=ab"]),
        ("ganlab.report", ["--out", "--wandb", "--publish"]),
    ],
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_options(module, options, flag):
    result = subprocess.run(
        [sys.executable, "-m", module, flag], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"``python -m {module}") or "usage:" in result.stdout
    for option in options:
        assert option in result.stdout, (option, result.stdout)


def test_help_wins_over_other_arguments(capsys):
    """``--help`` among other options prints the help (no error for a missing ckpt)."""
    from ganlab.sample import main

    with pytest.raises(SystemExit) as exit_info:
        main(["n=3", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "options (key=value; default shown):" in out and "seed=None" in out


def test_pictures_match_torchvision(tmp_path):
    """``ganlab.pictures`` writes what ``torchvision.utils.save_image`` writes (grids, one
    image, grayscale as RGB), so the commands' grids match the runs' pixel for pixel."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.utils import save_image

    from ganlab.pictures import save_images

    gen = torch.Generator().manual_seed(0)
    cases = [((64, 1, 8, 8), 8), ((10, 3, 6, 5), 3), ((1, 3, 4, 4), 8), ((1, 5, 5), 8)]
    for shape, columns in cases:
        images = torch.randn(shape, generator=gen) * 1.3  # values beyond [-1, 1] too
        save_image(images, tmp_path / "a.png", nrow=columns, normalize=True, value_range=(-1, 1))
        save_images(images, tmp_path / "b.png", columns)
        a, b = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in "ab")
        np.testing.assert_array_equal(a, b)
