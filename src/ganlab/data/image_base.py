"""Base classes of the image data modules: their options, and the two ways they are served.

Small sets live on the training device and are batched by indexing (``InMemoryImageData``);
large sets are decoded by DataLoader workers (``LoaderImageData``). Both serve every kind of
image item (images, pairs, two domains) from position-based index streams
(``ganlab.data.sampling``), so a checkpoint holds just the position.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from ganlab.data.base import CPU, DataModule
from ganlab.data.sampling import (
    Collate,
    IndexStream,
    LoaderBatches,
    MemoryBatches,
    Stream,
    load_batches,
    to_float,
)
from ganlab.data.sources import StackedSource, TensorSource, check_split, first
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.rng import stream_seed

__all__ = ["ImageDataModule", "InMemoryImageData", "LoaderImageData", "TensorSource"]


class ImageDataModule(DataModule):
    """Options shared by the image data modules: the size, channels and classes of the
    images, besides ``DataModule``'s batch size and seed."""

    kind = "images"
    #: the class's shipped configs are labelled (messages list them as such); an instance is
    #: labelled when ``num_classes`` > 0 (``spec.labelled``)
    labelled = True
    #: the domain classifier that scores samples of this set (``ganlab.metrics.classifier``)
    classifier: str | None = None

    def __init__(
        self, batch_size: int, seed: int, image_size: int, channels: int, num_classes: int
    ) -> None:
        super().__init__(batch_size, seed)
        if image_size < 1:
            raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes

    def tensor_source(self, split: str) -> TensorSource | StackedSource:
        """The split held in memory as uint8 images and labels (sets derived from this one,
        such as paired tasks, build on it)."""
        raise NotImplementedError

    def classifier_base(self) -> InMemoryImageData:
        """The labelled single-channel set that ``classifier`` is trained on."""
        raise UserError(
            f"no domain classifier for data {type(self).__name__}: "
            "use digits, stacked_digits, mnist or stacked_mnist"
        )

    @property
    def modes(self) -> int:
        """The modes that mode coverage counts: one per class (0: unlabelled)."""
        return self.num_classes

    @property
    def spec(self) -> DataSpec:
        return DataSpec(
            self.kind,
            {"x": self.image_shape},
            self.num_classes,
            classifier=self.classifier,
            modes=self.modes,
        )

    @property
    def cache_key(self) -> str:
        """Names these images in caches of real statistics (a folder adds its path)."""
        return type(self).__name__

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.channels, self.image_size, self.image_size)

    def _stream(self, n_items: int, rank: int, device: torch.device) -> IndexStream:
        """Rank ``rank``'s stream over ``n_items`` samples: ``per_step`` batches a position."""
        per_item = self.per_step * self.batch_size
        return IndexStream(n_items, per_item, stream_seed(self.seed, rank), device)


class InMemoryImageData(ImageDataModule):
    """A data set small enough to live on the training device, batched by indexing.

    Your own data set is one subclass and one YAML file. The subclass states what the data
    is and loads each split as tensors::

        class Sprites(InMemoryImageData):
            classifier = None  # no domain classifier: FID needs metrics.extractor=inception

            def __init__(self, root: str, batch_size: int = 64, seed: int = 0) -> None:
                super().__init__(batch_size, seed, image_size=16, channels=3, num_classes=5)
                self.root = root

            def load(self, split: str) -> TensorSource:  # split: "train" or "test"
                images, labels = torch.load(f"{self.root}/{split}.pt")
                return TensorSource(images, labels)  # uint8 (N, 3, 16, 16), int64 (N,)

    and ``conf/data/sprites.yaml`` names it, on ``hydra.searchpath``::

        # @package _global_
        data:
          _target_: mypackage.Sprites
          root: /data/sprites
          batch_size: 64
          seed: ${seed}

    The spec follows from the constructor's arguments: kind ``images`` (class attribute
    ``kind``), labelled when ``num_classes`` > 0 (unlabelled data: ``num_classes=0`` and
    ``TensorSource(images, None)``; the class attribute ``labelled`` only sorts the shipped
    configs in messages), one mode per class (override ``modes`` when they differ). How long
    the run draws from it is not the data's business: the runner calls ``serve`` before
    training. A split is loaded once, on the CPU; the training split is then copied to the
    training device.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sources: dict[str, Any] = {}  # CPU, per split
        self._placed: dict[torch.device, Any] = {}  # the train split on the training device

    def load(self, split: str) -> Any:
        """The split ("train" or "test") on the CPU: a source of uint8 images and labels
        (``TensorSource``; pairs and domains have their own) with ``len``, ``take(indices)``,
        ``batch(indices, per_step)`` and ``to(device)``."""
        raise NotImplementedError

    def source(self, split: str) -> Any:
        """The CPU source of ``split`` ("train" or "test"), loaded once."""
        check_split(split)
        if split not in self._sources:
            self._sources[split] = self.load(split)
        return self._sources[split]

    def tensor_source(self, split: str) -> Any:
        """The split as an in-memory source (for sets derived from this one)."""
        return self.source(split)

    def setup(self, stage: str | None = None) -> None:
        self.source("train")  # load (and fail on missing files) before training starts

    def _train_stream(self, source: Any, rank: int, device: torch.device) -> Stream:
        """The sample indices of rank ``rank``'s training items, into ``source``."""
        return self._stream(len(source), rank, device)

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> MemoryBatches:
        steps, per_step = self.served()
        if device not in self._placed:
            self._placed = {device: self.source("train").to(device)}  # one copy is enough
        data = self._placed[device]
        stream = self._train_stream(data, rank, device)
        return MemoryBatches(partial(data.batch, per_step=per_step), stream, steps)

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` (all when None) images of ``split`` in [-1, 1] on the CPU, with
        int64 labels (None for unlabelled data)."""
        data = self.source(split)
        images, labels = data.take(first(len(data), n, split))
        return to_float(images), labels

    def _head(self, source: Any, n: int | None, split: str) -> Tensor:
        """The indices into ``source`` of the first ``n`` (all when None) items of ``split``."""
        return first(len(source), n, split)

    def val_items(self, n: int | None = None, split: str = "test") -> Any:
        """The first ``n`` items of ``split`` (held out: "test"; all when it has fewer), as
        a batch without the step dim, on the CPU: a fixed validation set."""
        data = self.source(split)
        return data.batch(self._head(data, None if n is None else min(n, len(data)), split))


class LoaderImageData(ImageDataModule):
    """A data set decoded per item by ``num_workers`` DataLoader worker processes; subclasses
    return a map-style dataset per split (``dataset``) whose items ``collate`` stacks: uint8
    (C, H, W) images or (image, label) by default."""

    def __init__(self, *args: Any, num_workers: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if num_workers < 0:
            raise ValueError(
                f"num_workers must be >= 0 (0: load in the main process), got {num_workers}"
            )
        self.num_workers = num_workers

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def collate(self, per_step: int | None = None) -> Any:
        """Stacks a list of the dataset's items into a batch (``per_step``: a training item)."""
        return Collate(self.num_classes > 0, per_step)

    def _train_stream(self, data: Any, rank: int) -> Stream:
        """The dataset indices of rank ``rank``'s training items (drawn on the CPU)."""
        return self._stream(len(data), rank, CPU)

    def _head(self, data: Any, n: int | None, split: str) -> list:
        """The dataset indices of the first ``n`` (all when None) items of ``split``."""
        return first(len(data), n, split).tolist()

    def load_head(self, split: str, n: int | None) -> list[Any]:
        """The first ``n`` items of ``split``, decoded by the workers, as a list of batches
        without the step dim."""
        check_split(split)
        data = self.dataset(split)
        subset = Subset(data, self._head(data, n, split))
        return load_batches(subset, self.collate(), self.num_workers)

    def tensor_source(self, split: str) -> TensorSource:
        """The split decoded once into memory (for sets derived from this one; CIFAR-10 at
        32 px: 150 MB of uint8)."""
        data = self.dataset(split)
        items = [data[i] for i in range(len(data))]
        if self.num_classes == 0:
            return TensorSource(torch.stack(items), None)
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        return TensorSource(torch.stack([image for image, _ in items]), labels)

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> LoaderBatches:
        steps, per_step = self.served()
        data = self.dataset("train")
        return LoaderBatches(
            data,
            self._train_stream(data, rank),
            self.collate(per_step),
            steps,
            self.num_workers,
            pin_memory=device.type == "cuda",
        )

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` (all when None) images of ``split`` in [-1, 1] on the CPU, with
        int64 labels (None for unlabelled data); decoded by the workers."""
        labelled = self.num_classes > 0
        batches = [b if labelled else (b, None) for b in self.load_head(split, n)]
        if not batches:
            empty = torch.empty(0, dtype=torch.int64) if labelled else None
            return torch.empty(0, *self.image_shape), empty
        labels = torch.cat([y for _, y in batches]) if labelled else None
        return torch.cat([x for x, _ in batches]), labels
