"""Checkpoints in G steps, written atomically; a clean stop on SIGTERM/SIGINT/SIGUSR2, on
every rank.

Lightning's own signal handling is switched off during fit: on SIGTERM it raises out of the
loop without a checkpoint, and under DDP it broadcasts from inside the signal handler, which
can meet another collective and hang; its SLURM auto-requeue (SIGUSR1) would be a second
pre-emption mechanism beside submitit's. Here a signal only sets a flag; at the end of each
step the ranks agree on the flags (one small all-reduce on the CPU), then all save the
step's checkpoint together and stop. SIGUSR2 is the time-limit warning that Hydra's submitit
launcher asks SLURM for (``--signal=USR2@<signal_delay_s>``): once the checkpoint is saved,
``ganlab.cluster`` hands it on to submitit, which requeues the job (README, "Cluster").
"""

from __future__ import annotations

import errno
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector

from ganlab.callbacks.summary import SummaryPart
from ganlab.errors import UserError
from ganlab.io import atomic_path
from ganlab.loggers import RunCSVLogger
from ganlab.metrics.registry import metric

log = logging.getLogger(__name__)
_requested: list[str] = []  # stop signals received while ``stop_on_signals`` is active
_listening: list[bool] = []  # non-empty while ``stop_on_signals`` is active
#: the signals that stop a run at the end of its step with a checkpoint: the scheduler's
#: (SIGTERM: pre-emption, scancel), Ctrl+C, and submitit's time-limit warning (SIGUSR2)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


def _on_signal(signum: int, frame: Any) -> None:
    _requested.append(signal.Signals(signum).name)
    if signum == signal.SIGINT:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C: stop now


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While active, the ``STOP_SIGNALS`` ask the running fit to finish its step, save a
    checkpoint and stop (see ``Checkpoint``) instead of killing the process. Installed
    before the run is built, so an early signal is not lost either; Lightning's own
    handlers are not installed during fit (``_SignalsAsFlags``). The handlers found
    (submitit's, in a SLURM job) are restored afterwards."""
    _requested.clear()
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in previous:
        signal.signal(s, _on_signal)
    _listening.append(True)
    try:
        yield
    finally:
        _listening.pop()
        for s, handler in previous.items():
            signal.signal(s, handler)


class Checkpoint(SummaryPart, pl.Callback):
    """Saves ``<run dir>/checkpoints/last.ckpt`` every ``every`` G steps and after the last.

    - Atomic: written beside its destination, then renamed over it, so an interruption
      never leaves a truncated file in place of a good one.
    - Never after a divergence: a NaN checkpoint does not overwrite the last good one.
    - SIGTERM (cluster pre-emption) or SIGINT (Ctrl+C) under ``stop_on_signals``: the
      current step finishes, a checkpoint is saved and the run stops; ``resume=auto``
      continues it. A second Ctrl+C stops at once.
    - Holds the CSV history, so a resumed run's log continues where the checkpoint was.
    """

    def __init__(self, every: int = 1000, filename: str = "last.ckpt") -> None:
        if every < 1:
            raise ValueError(f"Checkpoint: every must be >= 1, got {every}")
        self.every, self.filename = every, filename
        self.interrupted_by: str | None = None
        self._trainer: pl.Trainer | None = None
        self._group: Any = None  # process group of the stop flags (gloo: CPU tensors)

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir) / "checkpoints" / self.filename

    # -------------------------------------------------------------- schedule
    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if _listening:  # signals set flags: Lightning must not act on SIGTERM itself
            trainer._signal_connector = _SignalsAsFlags(trainer)
        self._group = _flag_group(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        stop = self._agreed_signal(trainer)
        if stop and not self.interrupted_by:
            self.interrupted_by = stop
        due = self.interrupted_by or module.g_step % self.every == 0 or trainer.is_last_batch
        if not due or not module.check_finite():  # never a NaN checkpoint over a good one
            return
        path = self.save(trainer)
        # a signal during the last step changes nothing: the run is complete (a requeued
        # SLURM job would find nothing to train and fail)
        if self.interrupted_by and not trainer.is_last_batch:
            module.status = "interrupted"
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.warning(
                    "%s at step %d: checkpoint saved to %s",
                    self.interrupted_by,
                    module.g_step,
                    path,
                )

    def _agreed_signal(self, trainer: pl.Trainer) -> str | None:
        """The stop signal any rank has received (SIGTERM before SIGUSR2 before SIGINT: a
        cancelled job is not requeued), the same on every rank: one all-reduce of the signal
        numbers under DDP."""
        mine = max((signal.Signals[name].value for name in _requested), default=0)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            flag = torch.tensor([mine], dtype=torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
            mine = int(flag)
        return signal.Signals(mine).name if mine else None

    def save(self, trainer: pl.Trainer) -> Path:
        return save_atomic(trainer, self.path(trainer))

    def summary(self, module: pl.LightningModule) -> dict[str, Any]:
        """The signal that interrupted the run, if one did."""
        if module.status != "interrupted":
            return {}
        return {"signal": self.interrupted_by or "SIGTERM"}

    # -------------------------------------------------------------- state
    def _csv_loggers(self) -> list[RunCSVLogger]:
        loggers = self._trainer.loggers if self._trainer is not None else []
        return [lg for lg in loggers if isinstance(lg, RunCSVLogger)]

    def state_dict(self) -> dict[str, Any]:
        return {"csv": [lg.history() for lg in self._csv_loggers()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._trainer is not None and not self._trainer.is_global_zero:
            return
        for logger, text in zip(self._csv_loggers(), state.get("csv", []), strict=False):
            logger.restore(text)


def save_atomic(trainer: pl.Trainer, path: Path) -> Path:
    """Save the trainer's checkpoint to ``path`` atomically (``ganlab.io.atomic_path``): an
    interruption never leaves a truncated checkpoint. Collective: every rank calls it; rank 0
    writes. A write that fails (a full disk) leaves the previous checkpoint and no temporary
    file, and stops the run with one line (``UserError``)."""
    try:
        with atomic_path(path, commit=trainer.is_global_zero) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        hint = "; free some space, then" if err.errno == errno.ENOSPC else "; then"
        raise UserError(
            f"cannot write checkpoint {path}: {why} (the previous checkpoint is kept{hint} "
            "continue with resume=auto)"
        ) from None
    return path


class _SignalsAsFlags(_SignalConnector):
    """Lightning's signal connector with none of its handlers: ganlab's (``stop_on_signals``)
    only set a flag, which ``Checkpoint`` acts on at the end of a step. Lightning's SIGTERM
    handler would raise mid-step; its SLURM auto-requeue handler (SIGUSR1, "SLURM
    auto-requeueing enabled", ``SLURMEnvironment(auto_requeue=True)``) would save an
    ``hpc_ckpt`` mid-step and requeue the job a second way. One mechanism: ours, then
    submitit's requeue (``ganlab.cluster``)."""

    def register_signal_handlers(self) -> None:
        # what Lightning's teardown restores: the handlers as they are (ours)
        self.received_sigterm = False
        self._original_handlers = self._get_current_signal_handlers()


def _flag_group(trainer: pl.Trainer) -> Any:
    """The process group for the stop flags: the default one when it is gloo, else a gloo
    group, so agreeing on a flag reads no GPU tensor (no device sync). Collective."""
    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return None
    if dist.get_backend() == "gloo":
        return None
    return dist.new_group(backend="gloo")


class BestCheckpoint:
    """``checkpoints/best.ckpt``, kept by the metric ``monitor`` (``val/fid``, ...): whether
    lower or higher is better comes from the metric registry; a metric with neither is
    warned about once and keeps no best checkpoint."""

    def __init__(self, monitor: str | None) -> None:
        self.monitor = monitor
        self.best: float | None = None
        self._warned = False

    def update(self, trainer: pl.Trainer, values: dict[str, float]) -> None:
        """Save a checkpoint when ``values`` (keys without ``val/``) beat the best so far.
        Collective: every rank calls it with the same values."""
        if not self.monitor:
            return
        monitored = metric(self.monitor)
        if monitored.goal is None:
            if not self._warned and trainer.is_global_zero:
                log.warning("metrics: %s is neither lower- nor higher-better: no best.ckpt",
                            self.monitor)  # fmt: skip
            self._warned = True
            return
        value = values.get(self.monitor.removeprefix("val/"))
        if value is not None and monitored.better(value, self.best):
            self.best = value
            path = Path(trainer.default_root_dir) / "checkpoints" / "best.ckpt"
            save_atomic(trainer, path)
            log.info("metrics: new best %s %.4g: saved %s", self.monitor, value, path)
