"""A run directory belongs to one run: resume refuses to mix configs, trains longer
exactly, never overwrites a run, and two runs never share a directory at once."""

import shlex
import subprocess
import sys

import pytest
import torch
import yaml
from torch.testing import assert_close

from conftest import assert_one_error_line, run_cli, run_train
from ganlab.errors import UserError
from ganlab.resume import differences, is_safe, merge_overrides

LONGER = ["trainer=cpu", "loss=wgan_gp", "n_critic=2", "eval_every=1000", "log_every=5"]


def state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def test_train_longer_equals_a_longer_run_bit_for_bit(tmp_path):
    short, full = tmp_path / "short", tmp_path / "full"
    assert run_train(short, *LONGER, "steps=30")["steps"] == 30
    longer = run_train(short, *LONGER, "steps=60", "resume=auto")  # a completed run, longer
    assert longer["status"] == "completed" and longer["steps"] == 60
    run_train(full, *LONGER, "steps=60")
    a, b = state(short)["state_dict"], state(full)["state_dict"]
    assert a.keys() == b.keys() and any("ema.generator" in k for k in a)
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert state(short)["ganlab"]["overrides"][-1] == "steps=60"  # the run's overrides now


def test_a_run_dir_is_not_overwritten_without_resume(tmp_path):
    run_train(tmp_path, "trainer=smoke")
    before = {p: (tmp_path / p).read_bytes() for p in ("metrics.csv", "checkpoints/last.ckpt")}
    with pytest.raises(UserError) as err:
        run_train(tmp_path, "trainer=smoke", "seed=1")
    message = str(err.value)
    assert "already holds a run (checkpoints/last.ckpt, metrics.csv, summary.json)" in message
    assert f"resume=auto hydra.run.dir={tmp_path}" in message and "start anew" in message
    assert before == {p: (tmp_path / p).read_bytes() for p in before}


def test_a_second_run_in_a_locked_dir_gets_one_line(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from ganlab.rundir import acquire; acquire(Path(sys.argv[1])); print('held', "
         "flush=True); time.sleep(120)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"is in use by another ganlab run \(pid {holder.pid}"):
            run_train(tmp_path, "trainer=smoke")
        assert not (tmp_path / "metrics.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_train(tmp_path, "trainer=smoke")["status"] == "completed"  # released on exit


def test_a_checkpoint_that_does_not_fit_deletes_nothing(tmp_path):
    run_train(tmp_path, "trainer=smoke", "steps=20")
    csv_before = (tmp_path / "metrics.csv").read_bytes()
    ckpt = state(tmp_path)
    key = next(k for k in ckpt["state_dict"] if k.endswith("weight"))
    ckpt["state_dict"][key] = torch.zeros(3, 3)  # same config, other weights (edited, older)
    torch.save(ckpt, tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(UserError, match=rf"does not fit this run's nets: {key} is \(3, 3\)"):
        run_train(tmp_path, "trainer=smoke", "steps=40", "resume=auto")
    assert (tmp_path / "metrics.csv").read_bytes() == csv_before


def test_resume_with_another_config_is_refused_and_the_real_command_resumes(tmp_path):
    """The command line: the refusal names the differences and the command that resumes
    the run as it was; the run dir (.hydra/ included) is left as it was."""
    run = tmp_path / "run"
    first = ["trainer=smoke", "logger=csv", "loss=hinge", "model.generator.width=64"]
    assert run_cli(*first, f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    kept = {p: (run / p).read_bytes() for p in ("metrics.csv", ".hydra/overrides.yaml")}
    # forgot the original overrides, changed the batch size, asked for more steps
    result = run_cli("trainer=smoke", "logger=csv", "data.batch_size=128", "steps=40",
                     "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path)  # fmt: skip
    assert_one_error_line(result, f"error: resume: {run}/checkpoints/last.ckpt was trained")
    line = result.stderr.strip().splitlines()[-1]
    diffs = (
        "data.batch_size: 256 -> 128",
        "model.generator.width: 64 -> 128",
        "loss._target_: ganlab.losses.HingeLoss -> ganlab.losses.NonSaturatingLoss",
    )
    assert all(diff in line for diff in diffs), line
    assert kept == {p: (run / p).read_bytes() for p in kept}
    command = shlex.split(line.split("`")[1])
    assert command[:3] == ["python", "-m", "ganlab"] and "loss=hinge" in command
    assert "steps=40" in command and "data.batch_size=128" not in command
    resumed = run_cli(*command[3:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert state(run)["ganlab"]["g_step"] == 40
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    assert overrides == [*first, "steps=40"]  # the whole run's, not the last command's


def test_what_may_change_on_resume():
    assert all(
        is_safe(k)
        for k in (
            "steps",
            "eval_every",
            "logger.wandb.mode",
            "threads",
            "callbacks.metrics.n_samples",
            "callbacks.interrupt._target_",
        )
    )
    assert not any(
        is_safe(k)
        for k in (
            "loss._target_",
            "data.batch_size",
            "seed",
            "optim.d.lr",
            "callbacks.lr_decay.total",
            "model.generator.width",
        )
    )
    old = {"steps": 10, "loss": {"_target_": "a"}, "callbacks": {"lr_decay": {"start": 0.5}}}
    new = {"steps": 20, "loss": {"_target_": "b"}, "callbacks": {}}
    assert differences(old, new) == [
        ("callbacks.lr_decay.start", 0.5, None),
        ("loss._target_", "a", "b"),
    ]
    assert merge_overrides(["loss=hinge", "steps=5", "+x.y=1"], ["steps=9", "resume=auto"]) == [
        "loss=hinge",
        "steps=9",
        "+x.y=1",
    ]
