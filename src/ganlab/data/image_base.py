"""Base classes of the image data modules: options, device and rank, the two loader paths.

Small sets live on the training device as one uint8 tensor and are batched by indexing
(``InMemoryImageData``); large sets are decoded by DataLoader workers
(``LoaderImageData``). Both serve the same position-based index stream
(``ganlab.data.sampling``), so a checkpoint holds just the position.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ganlab.data.base import CPU, DataModule
from ganlab.data.sampling import (
    Collate,
    IndexStream,
    LoaderBatches,
    MemoryBatches,
    to_float,
    worker_message,
)
from ganlab.data.sources import StackedSource, TensorSource, check_split, first
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.rng import stream_seed


class ImageDataModule(DataModule):
    """Options shared by the image data modules (see ``ganlab.data.images``): the size,
    channels and classes of the images, besides ``DataModule``'s batch options."""

    kind = "images"
    #: labelled data (class labels in every batch)
    labelled = True
    #: the domain classifier that scores samples of this set (``ganlab.metrics.classifier``)
    classifier: str | None = None

    def __init__(
        self,
        batch_size: int,
        steps: int,
        batches_per_step: int,
        seed: int,
        image_size: int,
        channels: int,
        num_classes: int,
    ) -> None:
        super().__init__(batch_size, steps, batches_per_step, seed)
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
    def spec(self) -> DataSpec:
        return DataSpec(
            self.kind,
            {"x": self.image_shape},
            self.num_classes,
            classifier=self.classifier,
            modes=self.num_classes or None,
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
        per_item = self.batches_per_step * self.batch_size
        return IndexStream(n_items, per_item, stream_seed(self.seed, rank), device)


class InMemoryImageData(ImageDataModule):
    """A data set small enough to live on the training device: subclasses build each split's
    source on the CPU in ``_make_source``; training batches are gathered by indexing."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._sources: dict[str, TensorSource | StackedSource] = {}  # CPU, per split
        self._placed: dict[torch.device, TensorSource | StackedSource] = {}  # the train split

    def _make_source(self, split: str) -> TensorSource | StackedSource:
        raise NotImplementedError

    def tensor_source(self, split: str) -> TensorSource | StackedSource:
        """The split as an in-memory source (for sets derived from this one)."""
        return self.source(split)

    def source(self, split: str) -> TensorSource | StackedSource:
        """The CPU source of ``split`` ("train" or "test"), built once."""
        check_split(split)
        if split not in self._sources:
            self._sources[split] = self._make_source(split)
        return self._sources[split]

    def setup(self, stage: str | None = None) -> None:
        self.source("train")  # load (and fail on missing files) before training starts

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> MemoryBatches:
        if device not in self._placed:
            self._placed = {device: self.source("train").to(device)}  # one copy is enough
        data = self._placed[device]
        stream = self._stream(len(data), rank, device)
        return MemoryBatches(data.take, stream, self.batches_per_step, self.batch_size, self.steps)

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` (all when None) images of ``split`` in [-1, 1] on the CPU, with
        int64 labels (None for unlabelled data)."""
        data = self.source(split)
        images, labels = data.take(first(len(data), n, split))
        return to_float(images), labels


class LoaderImageData(ImageDataModule):
    """A data set decoded per item by ``num_workers`` DataLoader worker processes; subclasses
    return a map-style dataset of uint8 (C, H, W) images (or (image, label)) per split."""

    def __init__(self, *args, num_workers: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if num_workers < 0:
            raise ValueError(
                f"num_workers must be >= 0 (0: load in the main process), got {num_workers}"
            )
        self.num_workers = num_workers

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError

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
        data = self.dataset("train")
        return LoaderBatches(
            data,
            self._stream(len(data), rank, torch.device("cpu")),
            Collate(self.num_classes > 0, self.batches_per_step),
            self.steps,
            self.num_workers,
            pin_memory=device.type == "cuda",
        )

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` (all when None) images of ``split`` in [-1, 1] on the CPU, with
        int64 labels (None for unlabelled data); decoded by the workers."""
        check_split(split)
        data = self.dataset(split)
        subset = Subset(data, first(len(data), n, split).tolist())
        labelled = self.num_classes > 0
        loader = DataLoader(
            subset, batch_size=256, num_workers=self.num_workers, collate_fn=Collate(labelled)
        )
        try:
            batches = [b if labelled else (b, None) for b in loader]
        except UserError as err:  # an image that fails to decode, named in one line
            raise UserError(worker_message(err)) from None
        if not batches:
            empty = torch.empty(0, dtype=torch.int64) if labelled else None
            return torch.empty(0, *self.image_shape), empty
        labels = torch.cat([y for _, y in batches]) if labelled else None
        return torch.cat([x for x, _ in batches]), labels
