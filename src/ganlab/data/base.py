"""The base of ganlab's data modules: plain objects, free of Lightning.

A data module states what it provides (``kind``, ``spec``) and serves it: training batches
(``train_dataloader``), and, for the metrics and the commands, real images or items. The
commands that score or sample (``python -m ganlab.evaluate``) read real images from it
without importing Lightning; training shows it to Lightning's Trainer through
``ganlab.data.lightning.LightningData``, whose hooks call these with the training device and
the process's rank.
"""

from __future__ import annotations

from typing import Any

import torch

from ganlab.data.spec import DataSpec

CPU = torch.device("cpu")


class DataModule:
    """What every data module answers; subclasses fill in ``spec`` and ``train_dataloader``.

    The hooks keep Lightning's names and meaning (``prepare_data``: download or check files,
    once per machine; ``setup``: load what training needs, so missing files fail before the
    first step), so a data module reads like a LightningDataModule.

    Args:
        batch_size: samples per D update, per process (the family checks it: PacGAN's packs
            divide it).
        steps: training steps (G updates) the training batches last.
        batches_per_step: real batches per step, i.e. the module's ``n_critic``.
        seed: base seed of the data stream; DDP rank r draws from stream_seed(seed, r).
    """

    #: the kind of training item (``ganlab.data.spec.KINDS``)
    kind: str = ""
    #: labelled data (class labels in every batch)
    labelled: bool = False

    def __init__(self, batch_size: int, steps: int, batches_per_step: int, seed: int) -> None:
        for key, value in (("batch_size", batch_size), ("steps", steps)):
            if value < 1:
                raise ValueError(f"{key} must be >= 1, got {value}")
        if batches_per_step < 1:
            raise ValueError(f"n_critic must be >= 1, got {batches_per_step}")
        self.batch_size, self.steps, self.batches_per_step = batch_size, steps, batches_per_step
        self.seed = seed

    def prepare_data(self) -> None:
        """Download or check the files (once per machine, before ``setup``)."""

    def setup(self, stage: str | None = None) -> None:
        """Load what training needs, before the first step."""

    @property
    def spec(self) -> DataSpec:
        raise NotImplementedError

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> Any:
        """The training batches of process ``rank``, placed for ``device`` (an iterable with
        ``state_dict``/``load_state_dict``: its position is what a checkpoint keeps)."""
        raise NotImplementedError
