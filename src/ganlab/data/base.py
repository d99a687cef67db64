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
    """

    #: the kind of training item (``ganlab.data.spec.KINDS``)
    kind: str = ""
    #: labelled data (class labels in every batch)
    labelled: bool = False
    #: samples per D update, per process (the family checks it: PacGAN's packs divide it)
    batch_size: int
    #: training steps (G updates) the training batches last
    steps: int

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
