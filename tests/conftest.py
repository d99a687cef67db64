"""Shared helpers: run ganlab in-process or as the command line, on a tiny budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ganlab.train import compose_config, train

REPO = Path(__file__).resolve().parents[1]


def _mnist_root() -> Path:
    """Where the real MNIST files for tests are: $GANLAB_TEST_DATA, else ../shared/data beside
    the checkout, else /work/shared/data (tests that need them skip when none has them)."""
    candidates = [os.environ.get("GANLAB_TEST_DATA"), REPO.parent / "shared" / "data"]
    for root in [Path(c) for c in candidates if c] + [Path("/work/shared/data")]:
        if (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return root
    return Path("/work/shared/data")


MNIST_ROOT = _mnist_root()


@pytest.fixture
def random_inception_weights(tmp_path, monkeypatch):
    """torch-fidelity's InceptionV3 with seeded random weights, saved as a weights file: the
    stock Inception code path runs offline (the real weights need a download)."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    from torch import nn

    with monkeypatch.context() as m:
        m.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a: None)
        torch.manual_seed(0)
        model = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in model.modules():
        if isinstance(module, nn.Conv2d):  # keeps activations O(1) through ~50 layers
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path / "random-inception.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def run_train(run_dir: Path, *overrides: str) -> dict:
    """Train in this process with the command line's config; returns the run summary."""
    cfg = compose_config(["logger=csv", *overrides], run_dir)
    return train(cfg)


def family_state(run_dir: Path) -> dict:
    """The family's tensors (nets, EMA, buffers) in a run's last checkpoint."""
    import torch

    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("family.")}


def resumed_equals_uninterrupted(tmp_path: Path, overrides: list[str], at: int) -> dict:
    """Train ``overrides`` in ``tmp_path/full``, and in ``tmp_path/split`` interrupted
    (SIGINT) after G step ``at``, then resumed: asserts that both end with the same step
    count and bit-identical family state, and returns it (the uninterrupted run's)."""
    from torch.testing import assert_close

    full, split = tmp_path / "full", tmp_path / "split"
    done = run_train(full, *overrides)
    interrupt = [
        "+callbacks.interrupt._target_=conftest.InterruptAt",
        f"+callbacks.interrupt.step={at}",
    ]
    first = run_train(split, *overrides, *interrupt)
    assert first["status"] == "interrupted" and first["steps"] == at
    second = run_train(split, *overrides, "resume=auto")
    assert done["status"] == second["status"] == "completed" and second["steps"] == done["steps"]
    a, b = family_state(full), family_state(split)
    assert a.keys() == b.keys()
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    return a


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m ganlab <args>`` in a subprocess (W&B kept offline)."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "ganlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TRAINING_ONLY = ("lightning", "pytorch_lightning", "wandb")
# prints which of ``names`` are in sys.modules when the process ends
REPORT = (
    "import atexit, sys; atexit.register(lambda: print('LOADED', "
    "sorted(m for m in {names!r} if m in sys.modules)))\n"
)


def loaded_after(code: str, names: tuple[str, ...] = TRAINING_ONLY) -> list[str]:
    """The modules of ``names`` loaded when ``code`` has run in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", REPORT.format(names=names) + code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("LOADED")), None)
    assert result.returncode == 0 and line is not None, result.stderr[-2000:]
    return eval(line.removeprefix("LOADED "))  # a list of names, printed by REPORT


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    """The run failed with exit code 2 and exactly one ``error: ...`` line starting with
    ``message``, and no traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Classifiers and real statistics are cached for the session, never in ~/.cache."""
    os.environ["GANLAB_CACHE"] = str(tmp_path_factory.mktemp("ganlab_cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class InterruptAt:
    """A callback that sends this process SIGINT after G step ``step`` (as Ctrl+C would)."""

    def __new__(cls, step: int):
        import lightning.pytorch as pl

        class _Interrupt(pl.Callback):
            def on_train_batch_end(self, trainer, module, *args):
                if module.g_step == step:
                    os.kill(os.getpid(), signal.SIGINT)

        return _Interrupt()


class NaNAt:
    """A callback that fills G's weights with NaN after G step ``step`` (a divergence)."""

    def __new__(cls, step: int):
        import lightning.pytorch as pl
        import torch

        class _NaN(pl.Callback):
            def on_train_batch_end(self, trainer, module, *args):
                if module.g_step == step:
                    with torch.no_grad():
                        for p in module.family.generator.parameters():
                            p.fill_(float("nan"))

        return _NaN()


def _free_port_pair() -> int:
    """A TCP port p with p + 1 free too (slurmctld's and slurmd's)."""
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free consecutive ports")


@pytest.fixture(scope="session")
def slurm_env():
    """A real one-node SLURM cluster for the session (``scripts/slurm-local.sh``: Debian's
    slurm-wlm and munge, installed when missing; munged, slurmctld and slurmd started in
    the foreground as background children of the script, their PIDs written to
    ``<dir>/pids``, and stopped by those PIDs at the end). Yields the environment for its clients
    (``SLURM_CONF``). Skips, saying why, only where the packages cannot be installed."""
    import shutil
    import tempfile

    script = REPO / "scripts" / "slurm-local.sh"
    # not under pytest's tmp dir (mode 0700): munged runs as user munge and must reach it
    root = Path(tempfile.mkdtemp(prefix="ganlab-slurm-"))
    root.chmod(0o755)
    # 4 CPUs on a 2-core machine: the tests' jobs start together (scheduling is tested, not speed)
    env = {**os.environ, "SLURM_LOCAL_CPUS": "4", "SLURM_LOCAL_PORT": str(_free_port_pair())}
    proc = subprocess.run(
        ["bash", str(script), "start", str(root)], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    if proc.returncode != 0:
        subprocess.run(["bash", str(script), "stop", str(root)], timeout=60)
        shutil.rmtree(root, ignore_errors=True)
        if not (shutil.which("slurmctld") and shutil.which("munged")):
            pytest.skip(f"slurm-wlm/munge cannot be installed here: {proc.stderr[-300:]}")
        pytest.fail(f"the local SLURM did not start:\n{proc.stdout}\n{proc.stderr}")
    try:
        yield {"SLURM_CONF": str(root / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(script), "stop", str(root)], timeout=120)
        shutil.rmtree(root, ignore_errors=True)
