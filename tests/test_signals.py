"""Pre-emption works everywhere: SIGTERM/SIGINT under DDP (to the main process or the whole
group), a signal during an evaluation or a sample grid, and a full disk while saving."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.testing import assert_close

from conftest import run_cli, run_train
from ganlab.errors import UserError

TOY = ["trainer=cpu", "steps=20", "eval_every=10", "log_every=5", "ckpt_every=1000"]
NETS = ["model=dcgan", "data=digits", "data.image_size=16", "model.generator.width=8",
        "model.discriminator.width=8"]  # fmt: skip
IMAGE = [*NETS, "~callbacks.metrics", "sample_every=10", *TOY]


def weights(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["ganlab"]["g_step"], ckpt["state_dict"]


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def sigterm_during(monkeypatch, owner, name, step):
    """Patch ``owner.name`` to send this process SIGTERM when called at G step ``step``
    (read from the call count: it is called once per evaluation / grid)."""
    original, calls = getattr(owner, name), []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == step // 10:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the signal lands while the evaluation / grid is under way
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, patched)


def quick_scorer(monkeypatch):
    """Image metrics without the classifier or the real statistics (a fixed score): the
    callback's schedule, saving and signals are what is tested here."""
    from ganlab.metrics.scorer import ImageScorer

    monkeypatch.setattr(ImageScorer, "load_nets", lambda self, data, device: None)
    monkeypatch.setattr(ImageScorer, "prepare_real", lambda self, data, across_ranks=False: None)
    monkeypatch.setattr(ImageScorer, "score_share", lambda self, share, n, y=None: {"fid": 1.0})


@pytest.mark.parametrize("where", ["toy evaluation", "image metrics", "image sample grid"])
def test_sigterm_during_an_evaluation_saves_that_step_and_resumes_exactly(
    where, tmp_path, monkeypatch
):
    import ganlab.callbacks.samples as samples
    from ganlab.data.toy import GaussianMixture
    from ganlab.metrics.scorer import ImageScorer

    args = {"toy evaluation": TOY, "image sample grid": IMAGE}.get(where)
    if where == "image metrics":
        quick_scorer(monkeypatch)
        args = [*NETS, "callbacks.metrics.n_samples=16", "sample_every=100", *TOY]
    full = run_train(tmp_path / "full", *args)
    with monkeypatch.context() as m:
        if where == "toy evaluation":
            sigterm_during(m, GaussianMixture, "evaluate", 10)
        elif where == "image metrics":
            sigterm_during(m, ImageScorer, "score_share", 10)
        else:
            sigterm_during(m, samples, "save_grid", 10)
        stopped = run_train(tmp_path / "split", *args)
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM"
    assert stopped["steps"] == 10 and weights(tmp_path / "split")[0] == 10
    assert "resume=auto" in stopped["resume"]
    resumed = run_train(tmp_path / "split", *args, "resume=auto")
    assert resumed["status"] == full["status"] == "completed" and resumed["steps"] == 20
    assert_same(weights(tmp_path / "split")[1], weights(tmp_path / "full")[1])


def test_a_full_disk_while_saving_keeps_the_last_checkpoint_in_one_line(tmp_path, monkeypatch):
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    original, saves = TorchCheckpointIO.save_checkpoint, []

    def full_disk(self, checkpoint, path, storage_options=None):
        saves.append(path)
        if len(saves) == 2:  # the second save: half a file, then the disk is full
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", full_disk)
    with pytest.raises(UserError) as err:
        run_train(tmp_path, "trainer=cpu", "steps=30", "ckpt_every=10")
    assert str(err.value) == (
        f"cannot write checkpoint {tmp_path}/checkpoints/last.ckpt: No space left on device "
        "(the previous checkpoint is kept; free some space, then continue with resume=auto)"
    )
    assert weights(tmp_path)[0] == 10
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["steps"] == 20


# ---------------------------------------------------------------- DDP, 2 CPU processes
DDP = ["logger=csv", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
       "steps=200", "eval_every=1000", "log_every=10", "ckpt_every=100000"]  # fmt: skip


@pytest.fixture(scope="module")
def ddp_full(tmp_path_factory):
    """The uninterrupted 2-process run the resumed ones must equal."""
    run = tmp_path_factory.mktemp("ddp") / "full"
    result = run_cli(*DDP, f"hydra.run.dir={run}", cwd=run.parent, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return weights(run)[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "target"),
    [(signal.SIGTERM, "main"), (signal.SIGTERM, "group"), (signal.SIGINT, "group")],
)
def test_ddp_stops_on_a_signal_checkpoints_and_resumes_exactly(sig, target, ddp_full, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganlab", *DDP, f"hydra.run.dir={run}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WANDB_MODE": "offline"}, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (run / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)  # both ranks train once the first diagnostics are written
    (os.killpg if target == "group" else os.kill)(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    step = summary["steps"]
    assert 0 < step < 200 and weights(run)[0] == step
    assert f"continue with: python -m ganlab {' '.join(DDP)} resume=auto" in out
    resumed = run_cli(*DDP, "resume=auto", f"hydra.run.dir={run}", cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert weights(run)[0] == 200
    assert_same(weights(run)[1], ddp_full)
