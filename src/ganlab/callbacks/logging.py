"""Helpers for callbacks that log outside Lightning's ``self.log`` schedule."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


def log_now(
    trainer: pl.Trainer, metrics: dict[str, float], step: int, prog_bar: bool = False
) -> None:
    """Write ``metrics`` to every logger at G step ``step`` and expose them to the trainer.

    Evaluation runs on its own schedule in G steps, so it writes directly rather than
    through ``self.log`` (whose writes follow ``log_every_n_steps``).
    """
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
    tensors = {k: torch.tensor(v) for k, v in metrics.items()}
    trainer.callback_metrics.update(tensors)
    if prog_bar:
        trainer.progress_bar_metrics.update(metrics)
