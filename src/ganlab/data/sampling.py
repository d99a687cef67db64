"""Position-based index streams for finite data sets, and the two loaders that serve them.

The item at position p of a stream holds samples [p·n, (p+1)·n) of the concatenation of
epochs, each a permutation of the data set seeded with (seed, epoch): sampling without
replacement, epoch by epoch, as a shuffled DataLoader does, but any position can be
regenerated from the seed alone. The state to checkpoint is the position, as for
``ganlab.data.toy.RandomBatches``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

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


class Stream(Protocol):
    """Sample indices for each position of a training stream."""

    def indices(self, position: int) -> Tensor: ...


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


class ZipStream:
    """Two independent index streams drawn side by side (unpaired domains): the indices of a
    position are (n, 2), column 0 into domain A and column 1 into domain B."""

    def __init__(self, a: IndexStream, b: IndexStream) -> None:
        self.a, self.b = a, b

    def indices(self, position: int) -> Tensor:
        return torch.stack([self.a.indices(position), self.b.indices(position)], dim=1)


class MemoryBatches:
    """``length`` training items of a data set held on one device: ``batch(indices)`` gathers
    the samples at a position's indices as one training item. The state is the position."""

    def __init__(self, batch: Callable[[Tensor], Any], stream: Stream, length: int) -> None:
        self.batch, self.stream, self.length = batch, stream, length
        self.position = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        while self.position < self.length:
            item = self.batch(self.stream.indices(self.position))
            self.position += 1
            yield item

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


class PositionBatchSampler(Sampler[list[int]]):
    """The index lists of positions [start, stop) of a stream, for a DataLoader."""

    def __init__(self, stream: Stream, start: int, stop: int) -> None:
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
        labels = None
        if self.labelled:
            labels = torch.tensor([item[1] for item in items], dtype=torch.int64)
        return image_batch(images, labels, self.per_step)


def image_batch(
    images: Tensor, labels: Tensor | None, per_step: int | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """uint8 images (n, C, H, W) -> x in [-1, 1], or (x, y) when labelled; with ``per_step``,
    shaped (per_step, B, ...) for a training step."""
    x = to_float(images)
    if per_step is not None:
        x = x.view(per_step, -1, *x.shape[1:])  # (per_step, B, C, H, W)
    if labels is None:
        return x
    return x, labels if per_step is None else labels.view(per_step, -1)  # (per_step, B)


Item = dict[str, Tensor]


def to_batch(item: Item, per_step: int | None = None) -> Item:
    """An item's parts (uint8 images, int64 labels) -> images in [-1, 1], labels kept; with
    ``per_step``, every part is shaped (per_step, B, ...) for a training step."""
    out = {}
    for key, value in item.items():
        x = to_float(value) if value.dtype == torch.uint8 else value
        out[key] = x if per_step is None else x.view(per_step, -1, *x.shape[1:])  # (R, B, ...)
    return out


class DictCollate:
    """Stack dataset items (dicts of uint8 (C, H, W) images and int labels) in the workers."""

    def __init__(self, per_step: int | None = None) -> None:
        self.per_step = per_step

    def __call__(self, items: list[dict[str, Any]]) -> Item:
        batch = {
            key: torch.stack([it[key] for it in items])
            if isinstance(items[0][key], Tensor)
            else torch.tensor([it[key] for it in items], dtype=torch.int64)
            for key in items[0]
        }
        return to_batch(batch, self.per_step)


def concat(batches: list[Item]) -> Item:
    """Batches of items (dicts) as one batch."""
    if not batches:
        raise ValueError("no items to load")
    return {key: torch.cat([b[key] for b in batches]) for key in batches[0]}


def worker_message(err: Exception) -> str:
    """The original one-line message of an error re-raised from a DataLoader worker (which
    appends the worker's traceback: its last line is ``module.Class: message``)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    cls = type(err)
    return lines[-1].removeprefix(f"{cls.__module__}.{cls.__qualname__}: ") if lines else ""


@contextmanager
def worker_errors() -> Iterator[None]:
    """A ``UserError`` raised in a DataLoader worker (an image that fails to decode) comes out
    as its own one line, without the worker's traceback that DataLoader appends."""
    try:
        yield
    except UserError as err:
        raise UserError(worker_message(err)) from None


def load_batches(data: Dataset, collate: Callable[[list], Any], num_workers: int) -> list[Any]:
    """Every item of ``data`` decoded by ``num_workers`` workers, in batches of 256."""
    loader = DataLoader(data, batch_size=256, num_workers=num_workers, collate_fn=collate)
    with worker_errors():
        return list(loader)


class LoaderBatches:
    """``length`` items of a map-style dataset decoded by DataLoader workers, in the order of
    a stream (``IndexStream``, or two side by side). The position counts items handed out,
    not items the workers have prefetched, so a loader restored from ``state_dict`` continues
    exactly.
    """

    def __init__(
        self,
        dataset: Dataset,
        stream: Stream,
        collate: Callable[[list], Any],
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
        with worker_errors():
            for batch in loader:
                self.position += 1
                yield batch

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
