"""A ganlab data module as Lightning's Trainer takes it (training only imports this)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from ganlab.data.base import DataModule


class LightningData(pl.LightningDataModule):
    """Lightning's hooks, calling ``data``'s: ``train_dataloader`` with the training device
    and this process's global rank (each rank draws its own stream). Callbacks reach the
    data module as ``trainer.datamodule.data``."""

    def __init__(self, data: DataModule) -> None:
        super().__init__()
        self.data = data

    def prepare_data(self) -> None:
        self.data.prepare_data()

    def setup(self, stage: str) -> None:
        self.data.setup(stage)

    def train_dataloader(self) -> Any:
        return self.data.train_dataloader(
            self.trainer.strategy.root_device, self.trainer.global_rank
        )
