"""The command-line tools beside training: ``python -m ganlab.sample``."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TRAINING_ONLY, loaded_after, run_train
from ganlab.errors import UserError
from ganlab.sample import SampleOptions, main, sample

SMALL = [
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer=smoke",
    "~callbacks.metrics",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One unconditional and one conditional DCGAN smoke run on digits, and a toy run."""
    root = tmp_path_factory.mktemp("runs")
    image = ["model=dcgan", "data=digits", "data.image_size=16", *SMALL]
    run_train(root / "plain", *image)
    run_train(root / "cond", *image, "model.conditional=true")
    run_train(root / "toy", "trainer=smoke")
    return root


def args(**kw) -> SampleOptions:
    return SampleOptions(**{k: str(v) if k in ("ckpt", "out") else v for k, v in kw.items()})


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_sample_redraws_the_runs_last_grid(runs, tmp_path):
    out = sample(args(ckpt=runs / "plain" / "checkpoints" / "last.ckpt", out=tmp_path / "g.png"))
    np.testing.assert_array_equal(pixels(out), pixels(runs / "plain/samples/grid_0000020.png"))
    other = sample(args(ckpt=runs / "plain/checkpoints/last.ckpt", out=tmp_path / "o.png", seed=5))
    assert not np.array_equal(pixels(other), pixels(out))


def test_sample_redraws_a_conditional_runs_grid_pixel_for_pixel(runs, tmp_path):
    """A row per class, 8 columns, column j keeping its z: as the run drew it."""
    out = sample(args(ckpt=runs / "cond" / "checkpoints" / "last.ckpt", out=tmp_path / "g.png"))
    np.testing.assert_array_equal(pixels(out), pixels(runs / "cond/samples/grid_0000020.png"))


def test_conditional_grid_class_and_folder(runs, tmp_path):
    ckpt = runs / "cond" / "checkpoints" / "last.ckpt"
    grid = sample(args(ckpt=ckpt, out=tmp_path / "grid.png", n=40, columns=4))
    assert Image.open(grid).size == (4 * 18 + 2, 10 * 18 + 2)  # a row per class, 4 each
    one = sample(args(ckpt=ckpt, out=tmp_path / "three.png", n=16, class_=3))
    assert Image.open(one).size == (8 * 18 + 2, 2 * 18 + 2)
    folder = sample(args(ckpt=ckpt, out=tmp_path / "pngs", n=12))
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 12 and names[0] == "00000_class0.png" and names[11] == "00011_class1.png"
    strip = sample(args(ckpt=ckpt, out=tmp_path / "walk.png", interpolate=3, steps=5))
    assert Image.open(strip).size == (5 * 18 + 2, 3 * 18 + 2)


def test_toy_model_writes_points(runs, tmp_path):
    out = sample(args(ckpt=runs / "toy" / "checkpoints" / "last.ckpt", out=tmp_path / "p.csv"))
    points = np.loadtxt(out, delimiter=",")
    assert points.shape == (64, 2) and np.isfinite(points).all()
    with pytest.raises(UserError, match="makes points, not images"):
        sample(args(ckpt=runs / "toy" / "checkpoints" / "last.ckpt", out=tmp_path / "p.png"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "ckpt=PATH is required"),
        (["ckpt=x", "colour=red"], "unknown option 'colour'"),
        (["ckpt=/nonexistent.ckpt"], "checkpoint /nonexistent.ckpt does not exist"),
        (["ckpt=CKPT", "class=3"], "class=... needs a class-conditional model"),
        (["ckpt=CKPT", "n=0"], "n must be >= 1"),
        (["ckpt=FOREIGN"], "is not a ganlab checkpoint"),
    ],
)
def test_mistakes_are_one_line(argv, message, runs, tmp_path, capsys):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    ckpt = runs / "plain" / "checkpoints" / "last.ckpt"
    argv = [a.replace("=CKPT", f"={ckpt}").replace("=FOREIGN", f"={foreign}") for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_options_keep_defaults_and_name_a_bad_value():
    from ganlab.options import parse_options

    opts = parse_options(SampleOptions, ["ckpt=a.ckpt", "n=9", "class=3"], {"class": "class_"})
    assert (opts.out, opts.n, opts.class_) == ("samples.png", 9, 3)
    with pytest.raises(UserError, match="^n: Value 'abc'"):
        parse_options(SampleOptions, ["ckpt=a.ckpt", "n=abc"])


def test_command_line(runs, tmp_path):
    ckpt = runs / "plain" / "checkpoints" / "last.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "ganlab.sample", f"ckpt={ckpt}", f"out={tmp_path / 's.png'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "wrote" in result.stdout, result.stderr


def test_sampling_a_checkpoint_imports_no_training_machinery(runs, tmp_path):
    """The whole command (checkpoint checked against the trust registry, nets rebuilt, grid
    written) runs without Lightning or W&B: its start-up is torch's."""
    ckpt = runs / "plain" / "checkpoints" / "last.ckpt"
    code = f"from ganlab.sample import main\nmain(['ckpt={ckpt}', 'out={tmp_path / 'g.png'}'])"
    assert loaded_after(code, (*TRAINING_ONLY, "torchvision")) == []
