"""Checkpoints cannot run anything: only the callables ganlab registers are rebuilt."""

import pytest
import torch

from conftest import run_train
from ganlab import evaluate, sample
from ganlab.errors import UserError
from ganlab.trust import is_trusted, trusted_config


@pytest.fixture(scope="module")
def toy_ckpt(tmp_path_factory):
    run = tmp_path_factory.mktemp("toy")
    run_train(run, "trainer=smoke")
    return run / "checkpoints" / "last.ckpt"


def mutate(good, path, key, value):
    """A copy of checkpoint ``good`` at ``path`` whose stored config (both the resolved one
    that the commands rebuild and the one resume compares) has ``value`` at dotted ``key``."""
    ckpt = torch.load(good, weights_only=True)
    for config in (ckpt["ganlab"]["config"], ckpt["ganlab"]["resolved"]):
        *parents, last = key.split(".")
        for part in parents:
            config = config[part]
        config[last] = value
    torch.save(ckpt, path)
    return path


def craft(good, path, victim):
    """A checkpoint whose generator config writes ``victim`` when instantiated."""
    return mutate(good, path, "model.generator", {
        "_target_": "pathlib.Path.write_text",
        "_args_": [{"_target_": "pathlib.Path", "_args_": [str(victim)]}, "x"],
    })  # fmt: skip


def one_error_line(capsys, entry, argv):
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_crafted_checkpoint_runs_nothing_in_the_commands(command, toy_ckpt, tmp_path, capsys):
    victim = tmp_path / "pwned"
    bad = craft(toy_ckpt, tmp_path / "bad.ckpt", victim)
    entry = {"sample": sample.main, "evaluate": evaluate.main}[command]
    line = one_error_line(capsys, entry, [f"ckpt={bad}", f"out={tmp_path / 'o.csv'}"])
    assert "'pathlib.Path.write_text' (at model.generator)" in line and "refusing" in line
    assert not victim.exists()


def test_crafted_checkpoint_is_refused_on_resume(toy_ckpt, tmp_path):
    victim = tmp_path / "pwned"
    bad = craft(toy_ckpt, tmp_path / "bad.ckpt", victim)
    with pytest.raises(UserError, match="pathlib.Path.write_text"):
        run_train(tmp_path / "run", "trainer=smoke", f"resume={bad}")
    assert not victim.exists() and not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.parametrize(
    ("target", "trusted"),
    [
        ("ganlab.nets.MLP", True),  # re-exported: defined in ganlab.nets.mlp
        ("ganlab.nets.mlp.MLP", True),
        ("ganlab.families.LatentGAN", True),
        ("ganlab.losses.R1Penalty", True),
        ("ganlab.data.toy.ToyDataModule", True),
        ("ganlab.data.toy.ring", True),  # a function, listed
        ("torch.optim.Adam", True),
        ("ganlab.data.folder.Path", False),  # pathlib.Path seen through a ganlab module
        ("ganlab.data.folder.Image.open", False),
        ("ganlab.data.archives.ensure_files", False),  # a ganlab function, not listed
        ("ganlab.callbacks.checkpoint.save_atomic", False),
        ("os.system", False),
        ("builtins.eval", False),
        ("${oc.env:X}", False),
        (42, False),
    ],
)
def test_registry(target, trusted):
    assert is_trusted(target) is trusted


def test_only_the_rebuilt_parts_are_kept_and_checked(monkeypatch):
    config = {
        "model": {"generator": {"_target_": "ganlab.nets.MLP", "in_dim": 2}},
        "callbacks": {"x": {"_target_": "os.system"}},  # never rebuilt: dropped, not refused
        "seed": 0,
    }
    kept = trusted_config(config, "c.ckpt")
    assert set(kept) == {"model", "seed"}
    config["regularizers"] = {"r": {"weight": [{"_target_": "os.system"}]}}  # nested in a list
    with pytest.raises(UserError, match=r"'os.system' \(at regularizers.r.weight\[0\]\)"):
        trusted_config(config, "c.ckpt")
    monkeypatch.setenv("GANLAB_TRUSTED_MODULES", "mynets")  # your own nets can be allowed
    assert not is_trusted("mynets.Net")  # not importable: still refused
