"""Checkpoints in G steps, written atomically; a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ganlab.callbacks.summary import SummaryPart
from ganlab.io import atomic_path
from ganlab.loggers import RunCSVLogger
from ganlab.metrics.registry import metric

log = logging.getLogger(__name__)
_requested: list[str] = []  # stop signals received while ``stop_on_signals`` is active


def _on_signal(signum: int, frame: Any) -> None:
    _requested.append(signal.Signals(signum).name)
    if signum == signal.SIGINT:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C: stop now


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While active, SIGTERM and SIGINT ask the running fit to finish its step, save a
    checkpoint and stop (see ``Checkpoint``) instead of killing the process. Installed
    before the run is built, so an early signal is not lost either; Lightning adds its own
    SIGTERM handler (SLURM requeue included) to this one during fit."""
    _requested.clear()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in previous:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
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

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir) / "checkpoints" / self.filename

    # -------------------------------------------------------------- schedule
    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if _requested or trainer.received_sigterm:
            self.interrupted_by = _requested[0] if _requested else "SIGTERM"
        due = self.interrupted_by or module.g_step % self.every == 0 or trainer.is_last_batch
        if not due or not module.check_finite():  # never a NaN checkpoint over a good one
            return
        if self.interrupted_by:
            path = self.save(trainer)
            module.status = "interrupted"
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.warning(
                    "%s at step %d: checkpoint saved to %s; continue with "
                    "`python -m ganlab <same overrides> resume=auto hydra.run.dir=%s`",
                    self.interrupted_by,
                    module.g_step,
                    path,
                    trainer.default_root_dir,
                )
        else:
            self.save(trainer)

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
    writes."""
    with atomic_path(path, commit=trainer.is_global_zero) as tmp:
        trainer.save_checkpoint(tmp, weights_only=False)
    return path


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
