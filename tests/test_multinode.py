"""Multi-node DDP without a cluster: two torchrun agents on localhost (``--nnodes=2
--nproc_per_node=1``, c10d rendezvous), each a "node", run ``trainer=ddp
trainer.num_nodes=2``; Lightning's TorchElasticEnvironment reads torchrun's variables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from conftest import run_train
from test_ddp import HERE as TEST_DDP
from test_ddp import assert_ranks_equal_one_process, run_case

TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS = 80
RUN = (
    "trainer=ddp", "trainer.accelerator=cpu", "trainer.num_nodes=2", "logger=csv", "threads=1",
    f"steps={STEPS}", "ckpt_every=10", "eval_every=40",
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(tmp_path: Path, name: str, *command: str) -> list[subprocess.Popen]:
    """Two torchrun agents ("nodes") of one rendezvous running ``command``."""
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}  # fmt: skip
    rdzv = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{_free_port()}", f"--rdzv_id={name}"]  # fmt: skip
    return [
        subprocess.Popen(
            [str(TORCHRUN), *rdzv, *command],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=open(tmp_path / f"{name}{node}.out", "w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for node in range(2)
    ]


def _wait(nodes: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    return [node.wait(timeout=timeout) for node in nodes]


def _stop_node_after_step_10(nodes: list[subprocess.Popen], run_dir: Path) -> None:
    """SIGTERM to the second node's agent once the run has its first checkpoint."""
    end = time.monotonic() + 240
    while not (run_dir / "checkpoints" / "last.ckpt").is_file():
        if time.monotonic() > end or nodes[0].poll() is not None:
            return  # the test fails on the run's summary
        time.sleep(0.05)
    nodes[1].send_signal(signal.SIGTERM)


def _ganlab(run_dir: Path, *extra: str) -> tuple[str, ...]:
    return ("-m", "ganlab", *RUN, *extra, f"hydra.run.dir={run_dir}")


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.slow
def test_two_torchrun_nodes_stop_together_resume_exactly_and_equal_one_process(tmp_path):
    """One 2-node run goes through; another gets SIGTERM on one node (its agent, as a
    scheduler ending a node would): both ranks stop at the same step with one checkpoint,
    and its resume ends with the uninterrupted run's parameters and CSV log. And 2 nodes x B
    equal 1 process x 2B (test_ddp's case, its batches and z split by global rank). Lightning
    picks its TorchElasticEnvironment from torchrun's variables by itself."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    stopping = _nodes(tmp_path, "cut", *_ganlab(cut))
    stopper = threading.Thread(target=_stop_node_after_step_10, args=(stopping, cut))
    stopper.start()
    # meanwhile, the uninterrupted run here: 2 ranks of one machine (ganlab's launcher) are
    # ranks 0 and 1 of 2 nodes (the same streams, by global rank), with fewer processes
    assert run_train(full, *RUN[:2], "trainer.devices=2", *RUN[3:])["status"] == "completed"
    stopper.join()
    _wait(stopping)

    summary = json.loads((cut / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM", summary
    # rank 0 wrote the summary and the checkpoint at the step where rank 1 stopped
    assert 10 <= _state(cut)["ganlab"]["g_step"] == summary["steps"] < STEPS
    assert sorted(p.name for p in (cut / "checkpoints").iterdir()) == ["last.ckpt"]
    assert "resume=auto" in summary["resume"]

    # the resume (both nodes, resume=auto), and meanwhile 2 nodes x B against 1 process x 2B
    resuming = _nodes(tmp_path, "resume", *_ganlab(cut, "resume=auto"))
    ddp, ref = tmp_path / "ddp", tmp_path / "ref"
    ddp.mkdir(), ref.mkdir()
    pair = _nodes(tmp_path, "pair", str(TEST_DDP), "nonsat_r1_ema", str(ddp))
    run_case("nonsat_r1_ema", ref, devices=1)
    assert _wait(resuming) == [0, 0], (tmp_path / "resume0.out").read_text()[-3000:]
    assert _wait(pair) == [0, 0], (tmp_path / "pair0.out").read_text()[-3000:]

    assert json.loads((cut / "summary.json").read_text())["steps"] == STEPS
    assert_close(_state(cut)["state_dict"], _state(full)["state_dict"], rtol=0, atol=0)
    assert (cut / "metrics.csv").read_text() == (full / "metrics.csv").read_text()

    assert_ranks_equal_one_process(ddp, ref, "nodes")
