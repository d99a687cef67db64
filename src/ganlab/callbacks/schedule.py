"""The schedule shared by the callbacks that act every ``every`` G steps."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl

from ganlab.callbacks.needs import ANYTHING

log = logging.getLogger(__name__)


class Scheduled(pl.Callback):
    """Acts every ``every`` G steps and after the last step.

    Subclasses set ``needs`` (``ganlab.callbacks.needs.Needs``: the data kinds and family
    abilities they work with; the runner builds them only for such runs), ``interval_key``
    (the config key that sets ``every``, for messages) and implement ``act``. A run that
    stopped early, or a finished run resumed, is acted on at its end too; a diverged run
    is not.
    """

    needs = ANYTHING
    interval_key = "eval_every"

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"{type(self).__name__}: every must be >= 1, got {every}")
        self.every = every
        self._last_step: int | None = None  # G step of the last action

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        steps = trainer.datamodule.data.steps
        if self.every > steps and trainer.is_global_zero:
            log.warning(
                "%s=%d is larger than steps=%d: samples are evaluated only once, after the "
                "last step",
                self.interval_key,
                self.every,
                steps,
            )

    def _due(self, module: pl.LightningModule) -> bool:
        return module.status == "running" and module.check_finite()

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
        """The ``val/`` keys this callback can log for ``data`` and ``family`` (none when
        its needs are not met): what ``optimized_metric`` is checked against before
        training. A superset is safe; a key missing here would refuse a valid choice."""
        if not self.needs.met(data.spec, family):
            return set()
        return {f"val/{name}" for name in self.metric_names(data, family)}

    def metric_names(self, data: Any, family: Any) -> set[str]:
        """The names (without ``val/``) this callback logs for a run whose needs it meets."""
        return set()
