"""Position-based index streams for finite data sets, and the two loaders that serve them.

The item at position p of a stream holds samples [p·n, (p+1)·n) of the concatenation of
epochs, each a permutation of the data set seeded with (seed, epoch): sampling without
replacement, epoch by epoch, as a shuffled DataLoader does, but any position can be
regenerated from the seed alone. The state to checkpoint is the position, as for
``ganlab.data.toy.RandomBatches``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ganlab.errors import UserError
from ganlab.rng import stream_seed


def to_float(images: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1] (0 -> -1 and 255 -> 1 exactly).

    A product with a float32 constant is rounded the same on every device; a division by a
    Python scalar is not (CUDA multiplies by the reciprocal, the CPU divides).
    """
    return images.float().mul_(1 / 127.5).sub_(1.0)


class IndexStream:
    """Sample indices (on ``device``) for each position: epochs of seeded permutations.

    Permutations are drawn on the CPU (CPU and CUDA generators give different ones), so a
    stream is the same on every device and in both loaders.
    """

    def __init__(self, n_items: int, per_item: int, seed: int, device: torch.device | str) -> None:
        if n_items < 1:
            raise ValueError(f"IndexStream: need at least one sample, got n_items={n_items}")
        self.n_items, self.per_item, self.seed = n_items, per_item, seed
        self.device = torch.device(device)
        self._epochs: dict[int, Tensor] = {}

    def permutation(self, epoch: int) -> Tensor:
        """The order of the samples in ``epoch``; the last two epochs are kept."""
        if epoch not in self._epochs:
            generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
            perm = torch.randperm(self.n_items, generator=generator)
            self._epochs = {e: p for e, p in self._epochs.items() if e == epoch - 1}
            self._epochs[epoch] = perm.to(self.device)
        return self._epochs[epoch]

    def indices(self, position: int) -> Tensor:
        """The ``per_item`` sample indices of the item at ``position``."""
        start, end = position * self.per_item, (position + 1) * self.per_item
        parts = []
        while start < end:  # an item may span epochs (or several, for tiny data sets)
            epoch, offset = divmod(start, self.n_items)
            take = min(end - start, self.n_items - offset)
            parts.append(self.permutation(epoch)[offset : offset + take])
            start += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class MemoryBatches:
    """``length`` items of a data set held on one device, batched by indexing.

    ``take(indices)`` returns uint8 images (n, C, H, W) and int64 labels (n,) or None. Each
    item is x (per_step, batch_size, C, H, W) in [-1, 1], or (x, y) with y (per_step,
    batch_size) for labelled data.
    """

    def __init__(
        self,
        take: Callable[[Tensor], tuple[Tensor, Tensor | None]],
        stream: IndexStream,
        per_step: int,
        batch_size: int,
        length: int,
    ) -> None:
        self.take, self.stream = take, stream
        self.per_step, self.batch_size, self.length = per_step, batch_size, length
        self.position = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        while self.position < self.length:
            images, labels = self.take(self.stream.indices(self.position))
            self.position += 1
            x = to_float(images).view(self.per_step, self.batch_size, *images.shape[1:])
            if labels is None:
                yield x  # (per_step, B, C, H, W)
            else:
                yield x, labels.view(self.per_step, self.batch_size)  # (per_step, B)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


class PositionBatchSampler(Sampler[list[int]]):
    """The index lists of positions [start, stop) of a stream, for a DataLoader."""

    def __init__(self, stream: IndexStream, start: int, stop: int) -> None:
        self.stream, self.start, self.stop = stream, start, stop

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        for position in range(self.start, self.stop):
            yield self.stream.indices(position).tolist()


class Collate:
    """Stack dataset items (uint8 (C, H, W), or (image, label)) into float batches in the
    workers; ``per_step`` set: shaped (per_step, B, C, H, W) for a training step."""

    def __init__(self, labelled: bool, per_step: int | None = None) -> None:
        self.labelled, self.per_step = labelled, per_step

    def __call__(self, items: list[Any]) -> Tensor | tuple[Tensor, Tensor]:
        images = torch.stack([item[0] for item in items] if self.labelled else items)
        x = to_float(images)
        if self.per_step is not None:
            x = x.view(self.per_step, -1, *x.shape[1:])  # (per_step, B, C, H, W)
        if not self.labelled:
            return x
        y = torch.tensor([item[1] for item in items], dtype=torch.int64)
        return x, y if self.per_step is None else y.view(self.per_step, -1)


def worker_message(err: Exception) -> str:
    """The original one-line message of an error re-raised from a DataLoader worker (which
    appends the worker's traceback: its last line is ``module.Class: message``)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    cls = type(err)
    return lines[-1].removeprefix(f"{cls.__module__}.{cls.__qualname__}: ") if lines else ""


class LoaderBatches:
    """``length`` items of a map-style dataset decoded by DataLoader workers, in the order of
    an ``IndexStream``. The position counts items handed out, not items the workers have
    prefetched, so a loader restored from ``state_dict`` continues exactly.
    """

    def __init__(
        self,
        dataset: Dataset,
        stream: IndexStream,
        collate: Collate,
        length: int,
        num_workers: int,
        pin_memory: bool,
    ) -> None:
        self.dataset, self.stream, self.collate = dataset, stream, collate
        self.length, self.num_workers, self.pin_memory = length, num_workers, pin_memory
        self.position = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        loader = DataLoader(
            self.dataset,
            batch_sampler=PositionBatchSampler(self.stream, self.position, self.length),
            num_workers=self.num_workers,
            collate_fn=self.collate,
            pin_memory=self.pin_memory,
        )
        try:
            for batch in loader:
                self.position += 1
                yield batch
        except UserError as err:  # an image that fails to decode, named in one line
            raise UserError(worker_message(err)) from None

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
