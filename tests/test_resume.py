"""Exact resume, signals, divergence, checkpoints that are not ganlab's, config rules."""

import csv
import json
import logging
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.testing import assert_close

from conftest import assert_one_error_line, run_cli, run_train
from ganlab.checks import read_checkpoint
from ganlab.errors import UserError
from ganlab.train import compose_config, train

# a gradient penalty (torch's RNG), n_critic > 1 (the data stream) and EMA, all resumed
RUN = ["loss=wgan_gp", "n_critic=3", "steps=60", "eval_every=20", "log_every=5", "ckpt_every=1000"]


def params(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("family.")}


def logged_steps(run_dir):
    rows = csv.DictReader(open(run_dir / "metrics.csv"))
    return [int(r["step"]) for r in rows if r.get("train/d_loss")]


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path):
    full, split = tmp_path / "full", tmp_path / "split"
    run_train(full, *RUN, "trainer=cpu")
    first = run_train(
        split,
        *RUN,
        "trainer=cpu",
        "+callbacks.interrupt._target_=conftest.InterruptAt",
        "+callbacks.interrupt.step=27",
    )
    # the signal arrives in step 27's callbacks; the checkpoint callback runs last, so the
    # run saves and stops at that step
    assert first["status"] == "interrupted" and first["steps"] == 27
    second = run_train(split, *RUN, "trainer=cpu", "resume=auto")
    assert second["status"] == "completed" and second["steps"] == 60
    a, b = params(full), params(split)
    assert a.keys() == b.keys() and any("ema.generator" in k for k in a)
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert logged_steps(split) == logged_steps(full) == list(range(5, 61, 5))


def test_resume_auto_without_checkpoint_starts_fresh(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    summary = run_train(tmp_path, "trainer=smoke", "resume=auto")
    assert summary["steps"] == 20
    assert "resume=auto: no checkpoint" in caplog.text


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_resume_finishes_the_run(tmp_path):
    run_dir = tmp_path / "run"
    args = ["logger=csv", "steps=4000", "ckpt_every=100000", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganlab", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run_dir / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.2)  # training is under way once the first diagnostics are written
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "SIGTERM at step" in out and "resume=auto" in out, out[-2000:]
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["status"] == "interrupted" and 0 < interrupted["steps"] < 4000
    assert "Traceback" not in err
    resumed = run_cli(*args, "resume=auto", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4000
    steps = logged_steps(run_dir)
    assert steps == list(range(10, 4001, 10))  # no gap, no repeat


def test_divergence_stops_the_run_and_keeps_the_good_checkpoint(tmp_path):
    summary = run_train(
        tmp_path,
        "trainer=cpu",
        "steps=50",
        "ckpt_every=5",
        "+callbacks.nan._target_=conftest.NaNAt",
        "+callbacks.nan.step=12",  # G's weights NaN after step 12: step 13's losses are NaN
    )
    # found before the checkpoint of step 15 (and the logging of step 20), which is not saved
    assert summary["status"] == "diverged" and summary["diverged_at"] == 13, summary
    assert summary["steps"] == 15
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganlab"]["g_step"] == 10  # the last good checkpoint is kept
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert rows[-1]["diverged"] == "1.0"


@pytest.mark.slow
def test_multirun_goes_on_after_a_diverged_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "trainer=smoke",
        "logger=csv",
        "optim.d.lr=1e6,2e-4",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = [json.loads((sweep / j / "summary.json").read_text())["status"] for j in "01"]
    assert statuses == ["diverged", "completed"]
    assert "diverged: job(s) 0" in result.stdout + result.stderr


def test_truncated_or_foreign_checkpoint_is_one_clear_error(tmp_path):
    run_train(tmp_path / "run", "trainer=smoke")
    good = (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good[: len(good) // 2])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        read_checkpoint(truncated)
    with pytest.raises(UserError, match="not a ganlab checkpoint"):
        read_checkpoint(foreign)
    result = run_cli(
        "trainer=smoke",
        "logger=csv",
        f"resume={foreign}",
        f"hydra.run.dir={tmp_path / 'x'}",
        cwd=tmp_path,
    )
    assert_one_error_line(result, f"error: {foreign} is not a ganlab checkpoint")


def test_gradient_penalty_with_batchnorm_critic_fails_before_training(tmp_path):
    cfg = compose_config(
        ["trainer=smoke", "logger=csv", "loss=wgan_gp", "model.discriminator.norm=batch"], tmp_path
    )
    with pytest.raises(
        UserError,
        match=r"loss=wgan_gp with GradientPenalty needs a critic without BatchNorm.*"
        r"model=mlp.*norm=layer",
    ):
        train(cfg)
    assert not (tmp_path / "metrics.csv").exists()


def test_unknown_wandb_mode_is_one_clear_error(tmp_path):
    result = run_cli(
        "trainer=smoke", "logger.wandb.mode=onlien", f"hydra.run.dir={tmp_path}", cwd=tmp_path
    )
    assert_one_error_line(result, "error: logger.wandb.mode='onlien' is not a W&B mode")


def test_eval_every_larger_than_steps_warns(tmp_path, caplog):
    run_train(tmp_path, "trainer=cpu", "steps=10", "eval_every=100")
    assert "eval_every=100 is larger than steps=10" in caplog.text


def test_resumed_run_continues_its_wandb_run(tmp_path):
    first = run_cli("trainer=smoke", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    # Lightning's device lines once, in the run's log, not on the console (where they stood
    # before a mistake's one error line); imported late, its loggers would also reach Hydra's
    assert "GPU available" not in first.stdout + first.stderr, first.stderr[-2000:]
    assert (tmp_path / "train.log").read_text().count("GPU available") == 1
    result = run_cli("trainer=smoke", "resume=auto", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    assert list(runs[0].glob("files/media/images/samples_*.png"))  # the plots reach W&B too
    assert len({r.name.rsplit("-", 1)[1] for r in runs}) == 1  # one W&B run id, continued
