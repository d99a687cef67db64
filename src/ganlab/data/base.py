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

    A data module describes data only. How long a run draws from it is the runner's to say:
    ``serve(steps, per_step)`` before the training batches are asked for (``train.build``
    passes the run's ``steps`` and the family's ``batches_per_step``).

    Args:
        batch_size: samples per D update, per process (the family checks it: PacGAN's packs
            divide it).
        seed: base seed of the data stream; DDP rank r draws from stream_seed(seed, r).
    """

    #: the kind of training item (``ganlab.data.spec.KINDS``)
    kind: str = ""
    #: labelled data (class labels in every batch)
    labelled: bool = False

    def __init__(self, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed = batch_size, seed
        self.steps: int | None = None  # set by ``serve``
        self.per_step = 1

    def serve(self, steps: int, per_step: int = 1) -> DataModule:
        """Serve ``steps`` training items (one per G update), each ``per_step`` real batches
        (one per D update: the family's ``batches_per_step``); returns the module itself."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if per_step < 1:
            raise ValueError(f"n_critic must be >= 1, got {per_step}")
        self.steps, self.per_step = steps, per_step
        return self

    def served(self) -> tuple[int, int]:
        """(steps, per_step) as ``serve`` set them; a module not yet served has no length."""
        if self.steps is None:
            raise RuntimeError(
                f"{type(self).__name__}: call serve(steps, per_step) before train_dataloader"
            )
        return self.steps, self.per_step

    def summary(self, module: Any = None) -> dict[str, Any]:
        """Entries for the run summary (files skipped, ...); none by default."""
        return {}

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
