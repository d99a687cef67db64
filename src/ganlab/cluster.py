"""ganlab in a SLURM job: pre-emption is one mechanism, from the warning signal to the
resumed step.

1. Hydra's submitit launcher asks SLURM to send SIGUSR2 ``signal_delay_s`` seconds before
   the time limit (``#SBATCH --signal=USR2@<signal_delay_s>``); a pre-empting scheduler or
   ``scancel --signal=USR2`` sends the same.
2. ganlab's handler (``ganlab.callbacks.checkpoint.stop_on_signals``) only sets a flag: the
   step finishes, all ranks save its checkpoint together and stop.
3. ``after_interruption`` then hands the signal on to submitit's own handler
   (``SignalHandler.checkpoint_and_try_requeue``): it pickles the launcher's job again
   (``BaseSubmititLauncher.checkpoint``: the same job, the same arguments), runs
   ``scontrol requeue <job id>`` while the preset's ``max_num_timeout`` allows, and exits.
4. The requeued job runs the same Hydra job in the same run directory. Its checkpoint was
   written by this SLURM job (``job_id``, kept in the checkpoint), so the run directory
   guard knows it is the same run, and the job resumes it (``resume=auto``).

Lightning's SLURM auto-requeue (SIGUSR1) is not installed (``_SignalsAsFlags``), and
submitit's own SIGUSR2 handler is not called until the checkpoint is saved: it would
requeue mid-step, without one. SIGTERM (``scancel``, a pre-emption without warning) stops
the run with a checkpoint and status ``interrupted``, and the job ends there.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: the signal that asks for a checkpoint and a requeue (submitit's default, SIGUSR2; a
#: SUBMITIT_PREEMPT_SIGNAL of its own is not followed: one mechanism, one signal)
REQUEUE_SIGNAL = signal.SIGUSR2


def job_id() -> str | None:
    """This process's SLURM job as submitit names it (``<array job>_<task>`` for a job of
    a sweep), the same after a requeue; None outside SLURM."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def in_submitit_job() -> bool:
    """Whether this process runs a job for submitit (its ``process_job`` sets the folder)."""
    return bool(os.environ.get("SUBMITIT_FOLDER"))


def requeued_here(run_dir: Path) -> bool:
    """Whether this SLURM job was requeued (``SLURM_RESTART_COUNT`` > 0) and ``run_dir``'s
    checkpoint was saved by it: it continues its own run (it is not another run that would
    overwrite one). A second run in the same directory within one allocation (``salloc``)
    has the same job id but no restart: it is refused as before."""
    from ganlab.checks import read_checkpoint
    from ganlab.errors import UserError

    job, path = job_id(), run_dir / "checkpoints" / "last.ckpt"
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    if job is None or restarts in ("", "0") or not path.is_file():
        return False
    try:
        saved_by = read_checkpoint(path)["ganlab"].get("slurm_job")
    except UserError:
        return False  # the guard reports an unreadable checkpoint in its own words
    if saved_by == job:
        log.info("SLURM job %s (restart %s) resumes its own run in %s", job, restarts, run_dir)
    return saved_by == job


def after_interruption(signal_name: str | None) -> None:
    """A run stopped by a signal has saved its checkpoint: requeue the job (the time-limit
    signal in a submitit job), end the job with its summary (any other signal in a submitit
    job: the sweep goes on and reports the job ``interrupted``), or exit as a shell reports
    a signal (128 + its number) outside one."""
    signum = signal.Signals[signal_name or "SIGINT"]
    if not in_submitit_job():
        sys.exit(128 + signum)
    handler = signal.getsignal(signum)  # submitit's, restored by stop_on_signals
    if signum == REQUEUE_SIGNAL and callable(handler):
        log.info("%s: checkpoint saved; submitit requeues the job", signum.name)
        handler(signum, None)  # requeues and exits on rank 0; returns on the other ranks


class _FirstSacctWarning(logging.Filter):
    """Passes submitit's first "Bypassing sacct error" warning, drops its repeats: without
    SLURM accounting (``sacct``), submitit warns on every poll of its jobs, and only reads
    their results from files (``<job>_result.pkl``), which works without it."""

    seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        first, self.seen = not self.seen, True
        if first:
            record.msg = f"{record.msg} (repeats of this warning are not shown)"
        return first


def quiet_submitit() -> None:
    """Install ``_FirstSacctWarning`` on submitit's logger (once per process)."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, _FirstSacctWarning) for f in logger.filters):
        logger.addFilter(_FirstSacctWarning())
