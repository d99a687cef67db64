"""ganlab on a real one-node SLURM cluster (``slurm_env`` in conftest.py): a sweep with
``hydra/launcher=slurm``, pre-emption (SIGUSR2 -> checkpoint -> requeue -> resumed run,
``ganlab.cluster``) and ``scancel``, and DDP over 2 SLURM tasks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from test_ddp import assert_ranks_equal_one_process, run_case

HERE = Path(__file__).resolve().parent
STEPS = 400  # the pre-empted and the cancelled jobs are signalled once they pass step 50
SWEEP = (
    "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1", "logger=csv", "threads=1", f"steps={STEPS}", "ckpt_every=50",
    "eval_every=200",
)  # fmt: skip


def _slurm(env: dict, *args: str) -> str:
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout


def _wait(what: str, ready, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def _queue(env: dict) -> dict[str, tuple[str, str, str]]:
    """squeue: array task id (``<array>_<task>``) -> (raw job id, state, reason)."""
    lines = _slurm(env, "squeue", "-h", "-o", "%i %A %T %r").splitlines()
    return {i: (raw, state, reason) for i, raw, state, reason in (ln.split() for ln in lines)}


def _logged_at(log: str, pattern: str) -> tuple[float, re.Match]:
    """The time (epoch seconds) of the first line of Hydra's job log matching ``pattern``."""
    for line in log.splitlines():
        found = re.search(pattern, line)
        if found:
            stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp(), found
    raise AssertionError(f"no line matches {pattern!r} in:\n{log[-3000:]}")


def _params(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_sweep_preemption_requeue_and_scancel(slurm_env, tmp_path):
    """One sweep of 3 identical jobs on SLURM: job 0 runs through; job 1 gets the time-limit
    signal (SIGUSR2, as ``--signal=USR2@<signal_delay_s>`` sends it) mid-run, finishes its
    step, checkpoints, is requeued by submitit (the shipped preset) and resumes itself to the
    end: parameters and CSV log equal to job 0's. Job 2 is cancelled (``scancel``, SIGTERM):
    ``interrupted``, with its checkpoint and the resume command. The sweep ends with its
    table and report."""
    env = {**os.environ, **slurm_env, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    sweep = tmp_path / "sweep"
    out = open(tmp_path / "sweep.out", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganlab", "-m", *SWEEP, "seed=0,0,0", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        ckpts = [sweep / str(j) / "checkpoints" / "last.ckpt" for j in (1, 2)]
        _wait("jobs 1 and 2 to pass step 50", lambda: all(p.is_file() for p in ckpts))
        array = next(i for i in _queue(env) if i.endswith("_1")).split("_")[0]
        signalled = time.time()
        _slurm(env, "scancel", "--signal=USR2", f"{array}_1")
        _slurm(env, "scancel", f"{array}_2")
        # SLURM holds a requeued job (Reason=BeginTime) for 2 minutes (EligibleTime = requeue
        # + 121 s here); release it now, as a node free after that hold would run it
        _wait("job 1 to be requeued", lambda: _queue(env).get(f"{array}_1", ("",) * 3)[2]
              == "BeginTime", timeout=60)  # fmt: skip
        _slurm(env, "scontrol", "update", f"JobId={_queue(env)[f'{array}_1'][0]}", "StartTime=now")
        proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    text = (tmp_path / "sweep.out").read_text()
    assert proc.returncode == 0, text[-5000:]

    # the table and the report
    table = re.findall(r"^(\d)\s+(\w+)\s+(\d+)\s", text, flags=re.M)
    assert [(j, s) for j, s, _ in table] == [
        ("0", "completed"), ("1", "completed"), ("2", "interrupted")
    ], text[-3000:]  # fmt: skip
    assert (sweep / "report.html").is_file()
    summaries = [json.loads((sweep / str(j) / "summary.json").read_text()) for j in range(3)]
    assert [s["steps"] for s in summaries[:2]] == [STEPS, STEPS]

    # job 1: stopped at the end of a step with a checkpoint, requeued, resumed from that step
    log = (sweep / "1" / "train.log").read_text()
    stopped, found = _logged_at(log, r"SIGUSR2 at step (\d+): checkpoint saved")
    step = int(found[1])
    assert 50 <= step < STEPS
    requeued, _ = _logged_at(log, r"Requeued job \d+_1")
    _logged_at(log, r"resumes its own run")  # the guard knew its run: no "already holds a run"
    resumed, found = _logged_at(log, r"resuming from .*last\.ckpt \(step (\d+)\)")
    assert int(found[1]) == step
    print(f"pre-emption round trip: signal -> checkpoint {stopped - signalled:.2f} s, -> requeued "
          f"{requeued - signalled:.2f} s, -> resumed at step {step} {resumed - signalled:.1f} s "
          "(SLURM's 2-minute hold of the requeued job released)")  # fmt: skip
    # ... to the same parameters and the same CSV log as the uninterrupted job 0
    assert_close(_params(sweep / "1"), _params(sweep / "0"), rtol=0, atol=0)
    csv0, csv1 = ((sweep / j / "metrics.csv").read_text() for j in "01")
    assert csv1 == csv0
    assert [ln.split(",")[4] for ln in csv1.splitlines()[1:6]] == ["10", "20", "30", "40", "50"]

    # one mechanism: Lightning's SLURM auto-requeue ("SLURM auto-requeueing enabled. Setting
    # signal handlers.") was not installed in any job
    logs = [f.read_text() for f in (sweep / ".submitit").rglob("*_log.*")]
    assert logs and not any("auto-requeueing" in text for text in logs)

    # job 2: cancelled, with a checkpoint at the step it stopped, and the command resuming it
    cancelled = summaries[2]
    assert cancelled["status"] == "interrupted" and cancelled["signal"] == "SIGTERM"
    state = torch.load(sweep / "2" / "checkpoints" / "last.ckpt", weights_only=True)["ganlab"]
    assert 50 <= state["g_step"] == cancelled["steps"] < STEPS
    assert (
        "resume=auto" in cancelled["resume"]
        and f"hydra.run.dir={sweep / '2'}" in (cancelled["resume"])
    )


@pytest.mark.slow
def test_ddp_over_two_slurm_tasks_equals_one_process_with_twice_the_batch(slurm_env, tmp_path):
    """``srun --ntasks-per-node=2``: Lightning's SLURM environment makes the 2 tasks ranks 0
    and 1 of one GANDDPStrategy run (B each), which ends with the parameters of 1 process x
    2B."""
    env = {**os.environ, **slurm_env, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    ref, ddp = tmp_path / "ref", tmp_path / "ddp"
    ref.mkdir(), ddp.mkdir()
    # tests/test_ddp.py as a script is one rank of a 2-process case
    srun = subprocess.Popen(
        ["srun", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--job-name=ddp",
         "--chdir", str(HERE.parent), sys.executable, str(HERE / "test_ddp.py"), "nonsat_r1_ema",
         str(ddp)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    run_case("nonsat_r1_ema", ref, devices=1)  # meanwhile: 1 process x 2B, here
    output, _ = srun.communicate(timeout=240)
    assert srun.returncode == 0, output[-3000:]
    assert "All distributed processes registered. Starting with 2 processes" in output
    assert_ranks_equal_one_process(ddp, ref, "SLURM tasks")


def test_submitit_warns_once_that_sacct_failed(caplog):
    """Without accounting, submitit's "Bypassing sacct error" comes on every poll: the first
    is shown, the repeats are not; its other warnings pass."""
    import logging

    from ganlab.cluster import quiet_submitit

    quiet_submitit()
    quiet_submitit()  # once per process, however often it is called
    logger = logging.getLogger("submitit")
    with caplog.at_level(logging.WARNING, logger="submitit"):
        for call in (1, 2, 3):
            logger.warning(f"Call #{call} - Bypassing sacct error (exit status 1)")
        logger.warning("Bypassing signal SIGTERM")
    shown = [r.getMessage() for r in caplog.records]
    assert len(shown) == 2 and shown[0].startswith("Call #1 - Bypassing sacct error"), shown
    assert "repeats of this warning are not shown" in shown[0]
    assert shown[1] == "Bypassing signal SIGTERM"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "1", "SLURM_RESTART_COUNT": "1"}, True),
        # the same job, not restarted: a second run in one allocation (salloc) is refused
        ({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "1"}, False),
        (
            {"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "2", "SLURM_RESTART_COUNT": "1"},
            False,
        ),
        ({"SLURM_JOB_ID": "9", "SLURM_RESTART_COUNT": "2"}, False),  # another job's run
        ({}, False),  # not in SLURM
    ],
)
def test_a_requeued_job_knows_its_own_run(tmp_path, monkeypatch, env, expected):
    """The run-directory guard lets a job continue a run only when SLURM restarted it and
    the run's checkpoint was saved by that very job (submitit's ``<array>_<task>``)."""
    from ganlab.cluster import requeued_here

    for var in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    (tmp_path / "checkpoints").mkdir()
    state = {"state_dict": {}, "ganlab": {"g_step": 3, "slurm_job": "7_1"}}
    torch.save(state, tmp_path / "checkpoints" / "last.ckpt")
    assert requeued_here(tmp_path) is expected
