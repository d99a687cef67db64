"""The schedule shared by the callbacks that act every ``every`` G steps."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl

log = logging.getLogger(__name__)


class Scheduled(pl.Callback):
    """Acts every ``every`` G steps and after the last step, on the data kinds it serves.

    Subclasses set ``kinds`` (the ``DataSpec.kind`` values they serve; empty: all),
    ``interval_key`` (the config key that sets ``every``, for messages) and implement
    ``act``. A run that stopped early, or a finished run resumed, is acted on at its end
    too; a diverged run is not.
    """

    kinds: tuple[str, ...] = ()
    interval_key = "eval_every"

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"{type(self).__name__}: every must be >= 1, got {every}")
        self.every = every
        self.active = False
        self._last_step: int | None = None  # G step of the last action

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        data = trainer.datamodule.data
        self.active = not self.kinds or data.spec.kind in self.kinds
        steps = data.steps
        if self.active and self.every > steps and trainer.is_global_zero:
            log.warning(
                "%s=%d is larger than steps=%d: samples are evaluated only once, after the "
                "last step",
                self.interval_key,
                self.every,
                steps,
            )

    def _due(self, module: pl.LightningModule) -> bool:
        return self.active and module.status == "running" and module.check_finite()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if (module.g_step % self.every == 0 or trainer.is_last_batch) and self._due(module):
            self._last_step = module.g_step
            self.act(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._last_step != module.g_step and self._due(module):
            self._last_step = module.g_step
            self.act(trainer, module)

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        raise NotImplementedError

    def may_log(self, data: Any, family: Any) -> set[str]:
        """The ``val/`` keys this callback can log for ``data`` and ``family`` (none when it
        does not serve the data's kind): what ``optimized_metric`` is checked against before
        training. A superset is safe; a key missing here would refuse a valid choice."""
        if self.kinds and data.spec.kind not in self.kinds:
            return set()
        return {f"val/{name}" for name in self.metric_names(data, family)}

    def metric_names(self, data: Any, family: Any) -> set[str]:
        """The names (without ``val/``) this callback logs for a data kind it serves."""
        return set()
