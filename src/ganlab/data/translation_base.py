"""What the paired (``pairs``) and unpaired (``domains``) data modules share: items as dicts
of images and labels, the two loader paths that serve them, and their base image sets.

An item's parts are uint8 images (N, C, H, W) and int64 labels (N,); a training batch has
every part in float [-1, 1] (images) or int64 (labels), shaped (batches_per_step, B, ...).
Both paths draw sample indices from position-based streams (``ganlab.data.sampling``): the
state to checkpoint is the position, and two domains use two independent streams.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ganlab.data.base import CPU
from ganlab.data.decode import SUFFIXES, unreadable
from ganlab.data.image_base import ImageDataModule, LoaderImageData
from ganlab.data.sampling import IndexStream, LoaderBatches, to_float, worker_message
from ganlab.data.sources import check_split
from ganlab.errors import UserError

log = logging.getLogger(__name__)

Item = dict[str, Tensor]


def to_batch(item: Item, per_step: int | None = None) -> Item:
    """uint8 images -> float32 in [-1, 1], labels kept; with ``per_step``, every part is
    shaped (per_step, B, ...) for a training step."""
    out = {}
    for key, value in item.items():
        x = to_float(value) if value.dtype == torch.uint8 else value
        out[key] = x if per_step is None else x.view(per_step, -1, *x.shape[1:])  # (R, B, ...)
    return out


def layout_files(folder: Path, what: str, layout: str) -> list[Path]:
    """The image files under ``folder`` (recursively), sorted; ``UserError`` saying where to
    put them (``layout`` describes the expected folders)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        state = "has no image files" if folder.is_dir() else "does not exist"
        raise UserError(f"{folder} {state}: put the {what} there ({layout})")
    return files


def readable(files: list[Path], folder: Path, on_error: str) -> list[Path]:
    """``files`` without those PIL cannot open: ``UserError`` naming the first
    (``on_error="raise"``), or skipped with a warning (``"skip"``), as ``ImageFolder`` does."""
    bad = unreadable(files)
    if bad and on_error == "raise":
        raise UserError(
            f"cannot read image {bad[0]} ({len(bad)} unreadable file(s) in {folder}): fix or "
            "remove it, or set data.on_error=skip to skip unreadable files"
        )
    if bad:
        log.warning("skipped %d unreadable image file(s) in %s", len(bad), folder)
    skip = set(bad)
    files = [p for p in files if p not in skip]
    if not files:
        raise UserError(f"no readable image files in {folder}")
    return files


class ZipStream:
    """Two independent index streams drawn side by side (unpaired domains): the indices of a
    position are (n, 2), column 0 into domain A and column 1 into domain B."""

    def __init__(self, a: IndexStream, b: IndexStream) -> None:
        self.a, self.b = a, b

    def indices(self, position: int) -> Tensor:
        return torch.stack([self.a.indices(position), self.b.indices(position)], dim=1)


class ItemBatches:
    """``length`` training items of a data set held on one device: ``take(indices)`` gives
    the item's parts; yields them through ``to_batch``. The state is the position."""

    def __init__(
        self,
        take: Callable[[Tensor], Item],
        stream: IndexStream | ZipStream,
        per_step: int,
        length: int,
    ) -> None:
        self.take, self.stream, self.per_step, self.length = take, stream, per_step, length
        self.position = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Item]:
        while self.position < self.length:
            item = self.take(self.stream.indices(self.position))
            self.position += 1
            yield to_batch(item, self.per_step)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


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


class MemoryItemData(ImageDataModule):
    """Items held on the training device; subclasses build a split's source (``take(indices)
    -> Item``, ``head(n, split) -> Item``, ``to(device)``) in ``_make_source`` and its
    stream in ``_item_stream``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sources: dict[str, Any] = {}  # CPU, per split
        self._placed: dict[torch.device, Any] = {}  # the train split on the training device

    def _make_source(self, split: str) -> Any:
        raise NotImplementedError

    def _item_stream(self, source: Any, rank: int, device: torch.device) -> Any:
        raise NotImplementedError

    def source(self, split: str) -> Any:
        """The CPU source of ``split`` ("train" or "test"), built once."""
        check_split(split)
        if split not in self._sources:
            self._sources[split] = self._make_source(split)
        return self._sources[split]

    def setup(self, stage: str | None = None) -> None:
        self.source("train")  # load (and fail on missing files) before training starts

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> ItemBatches:
        if device not in self._placed:
            self._placed = {device: self.source("train").to(device)}
        data = self._placed[device]
        stream = self._item_stream(data, rank, device)
        return ItemBatches(data.take, stream, self.batches_per_step, self.steps)

    def val_items(self, n: int | None = None, split: str = "test") -> Item:
        """The first ``n`` items of ``split`` (held out: "test"; all when it has fewer), as
        a batch without the step dim, on the CPU: a fixed validation set."""
        source = self.source(split)
        return to_batch(source.head(None if n is None else min(n, len(source)), split))


class LoaderItemData(LoaderImageData):
    """Items decoded per item by DataLoader workers from a map-style ``dataset(split)`` of
    dicts, in the order of ``_item_stream``; ``_head(data, n, split)`` lists the dataset indices
    of the first ``n`` items."""

    def _item_stream(self, data: Dataset, rank: int) -> Any:
        raise NotImplementedError

    def _head(self, data: Dataset, n: int | None, split: str) -> list:
        raise NotImplementedError

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> LoaderBatches:
        data = self.dataset("train")
        return LoaderBatches(
            data,
            self._item_stream(data, rank),
            DictCollate(self.batches_per_step),  # type: ignore[arg-type]
            self.steps,
            self.num_workers,
            pin_memory=device.type == "cuda",
        )

    def val_items(self, n: int | None = None, split: str = "test") -> Item:
        """The first ``n`` items of ``split`` (held out: "test"; all when it has fewer),
        decoded by the workers, as a batch without the step dim, on the CPU: a fixed
        validation set."""
        check_split(split)
        data = self.dataset(split)
        n = None if n is None else min(n, len(data))
        return load_items(Subset(data, self._head(data, n, split)), self.num_workers)


def load_items(data: Dataset, num_workers: int) -> Item:
    """Every item of ``data`` (dicts), decoded by ``num_workers`` workers and concatenated."""
    loader = DataLoader(data, batch_size=256, num_workers=num_workers, collate_fn=DictCollate())
    try:
        batches = list(loader)
    except UserError as err:  # an image that fails to decode, named in one line
        raise UserError(worker_message(err)) from None
    if not batches:
        raise ValueError("no items to load")
    return {key: torch.cat([b[key] for b in batches]) for key in batches[0]}
