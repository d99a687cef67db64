"""Periodic checkpoints in G steps, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl


class Checkpoint(pl.Callback):
    """Saves ``<run dir>/checkpoints/last.ckpt`` every ``every`` G steps and after the last.

    The file is written beside its destination and renamed over it, so an interruption
    never leaves a truncated checkpoint in place of a good one.
    """

    def __init__(self, every: int = 1000, filename: str = "last.ckpt") -> None:
        if every < 1:
            raise ValueError(f"Checkpoint: every must be >= 1, got {every}")
        self.every, self.filename = every, filename

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.default_root_dir) / "checkpoints" / self.filename

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if module.g_step % self.every == 0 or trainer.is_last_batch:
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> Path:
        path = self.path(trainer)
        tmp = path.with_name(path.name + ".tmp")
        if trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(
            tmp, weights_only=False
        )  # collective: every rank calls, rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, path)
        return path
