"""Two unpaired image domains (CycleGAN, Zhu et al. 2017): items {"a", "b"} drawn
independently, with the domains' labels when they have them (for evaluation only).

- ``UnpairedImages``: any two image sets held on the training device; ``Digits2MNIST``:
  A = scikit-learn's 8x8 digits upsampled, B = MNIST (both offline).
- ``UnpairedFolder``: the CycleGAN layout ``trainA/ trainB/ testA/ testB/`` (horse2zebra,
  ...), decoded per item by DataLoader workers.

Each training step yields {"a": (R, B, C_a, S, S), "b": (R, B, C_b, S, S)} in [-1, 1], plus
"label_a" / "label_b": (R, B) int64 for labelled domains; R = batches_per_step. A and B are
drawn by two position-based streams with different seeds, so their orders are independent
and a checkpoint still holds only the position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from ganlab.callbacks.summary import SummaryPart
from ganlab.data.folder import Decoding, FolderImages, ImageFolder
from ganlab.data.image_base import ImageDataModule
from ganlab.data.images import MNIST, Digits
from ganlab.data.sampling import Collate, IndexStream, to_float, worker_message
from ganlab.data.sources import StackedSource, TensorSource, check_split, first
from ganlab.data.spec import DataSpec
from ganlab.data.translation_base import (
    Item,
    LoaderItemData,
    MemoryItemData,
    ZipStream,
    layout_files,
    readable,
)
from ganlab.errors import UserError
from ganlab.rng import stream_seed

DOMAINS = ("a", "b")
LAYOUT = (
    "the CycleGAN layout: trainA/, trainB/, testA/ and testB/, e.g. horse2zebra from "
    "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"
)


def check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")


def head_pairs(sizes: tuple[int, int], n: int | None, split: str) -> Tensor:
    """Index pairs (n, 2) of the first ``n`` items of both domains (all that the smaller
    domain has when None)."""
    idx = first(min(sizes), n, split)
    return torch.stack([idx, idx], dim=1)


@dataclass
class DomainSource:
    """A split of two domains held in memory: each a source of uint8 images and labels."""

    a: TensorSource | StackedSource
    b: TensorSource | StackedSource

    def __len__(self) -> int:
        """Items of the validation set: as many as the smaller domain has."""
        return min(len(self.a), len(self.b))

    def take(self, idx: Tensor) -> Item:
        """Images (and labels) of A at ``idx[:, 0]`` and of B at ``idx[:, 1]``."""
        item = {}
        for column, (name, part) in enumerate((("a", self.a), ("b", self.b))):
            images, labels = part.take(idx[:, column])
            item[name] = images
            if labels is not None:
                item[f"label_{name}"] = labels
        return item

    def head(self, n: int | None, split: str) -> Item:
        return self.take(head_pairs((len(self.a), len(self.b)), n, split))

    def to(self, device: torch.device) -> DomainSource:
        return DomainSource(self.a.to(device), self.b.to(device))


def zip_stream(seed: int, rank: int, sizes: tuple[int, int], per_item: int, device) -> ZipStream:
    """Independent streams of A and B: seeds (seed, rank, 0) and (seed, rank, 1)."""
    a, b = (
        IndexStream(n, per_item, stream_seed(seed, rank, d), device) for d, n in enumerate(sizes)
    )
    return ZipStream(a, b)


class UnpairedImages(MemoryItemData):
    """Two image sets as unpaired domains A and B, held on the training device.

    Args:
        a, b: the domains (any ``ImageDataModule`` of the same ``image_size``; only their
            splits are used). Labels are kept when a domain has them; ``num_classes`` is
            theirs when both have the same, else 0 (no label preservation to score).
        batch_size: images of each domain per step (CycleGAN: 1).
        steps, batches_per_step, seed: as for every image data module.
    """

    kind = "domains"
    labelled = True  # labels for evaluation only

    def __init__(
        self,
        a: ImageDataModule,
        b: ImageDataModule,
        batch_size: int = 1,
        steps: int = 1000,
        batches_per_step: int = 1,
        seed: int = 0,
    ) -> None:
        if a.image_size != b.image_size:
            raise UserError(
                f"the two domains need the same image_size, got {a.image_size} (a: "
                f"{type(a).__name__}) and {b.image_size} (b: {type(b).__name__})"
            )
        classes = a.num_classes if a.num_classes == b.num_classes else 0
        super().__init__(
            batch_size, steps, batches_per_step, seed, a.image_size, b.channels, classes
        )
        self.domains = {"a": a, "b": b}

    @property
    def spec(self) -> DataSpec:
        a, b = self.domains["a"], self.domains["b"]
        return DataSpec(
            self.kind,
            {"a": a.image_shape, "b": b.image_shape},
            num_classes=self.num_classes,
            classifiers={"a": a.spec.classifier, "b": b.spec.classifier},
        )

    def prepare_data(self) -> None:
        for domain in self.domains.values():
            domain.prepare_data()

    def _make_source(self, split: str) -> DomainSource:
        return DomainSource(*(self.domains[d].tensor_source(split) for d in DOMAINS))

    def _item_stream(self, source: DomainSource, rank: int, device: torch.device) -> ZipStream:
        sizes = (len(source.a), len(source.b))
        return zip_stream(self.seed, rank, sizes, self.batches_per_step * self.batch_size, device)

    def domain_data(self, domain: str) -> ImageDataModule:
        """Domain ``a`` or ``b`` as an image set (real images, domain classifier)."""
        check_domain(domain)
        return self.domains[domain]

    def real_images(
        self, split: str = "train", n: int | None = None, domain: str = "b"
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` images of ``domain`` ("b" by default: the target of A -> B) of
        ``split`` in [-1, 1] on the CPU, with int64 labels or None."""
        check_domain(domain)
        data = getattr(self.source(split), domain)
        images, labels = data.take(first(len(data), n, split))
        return to_float(images), labels


class Digits2MNIST(UnpairedImages):
    """digits -> MNIST: A = scikit-learn's 8x8 digits (``Digits``, bilinear-upsampled to
    ``image_size``; "test" = its stratified ``holdout``), B = MNIST (``MNIST``, files under
    ``root``); both labelled (10 classes, evaluation only), both offline."""

    def __init__(
        self,
        batch_size: int = 1,
        steps: int = 1000,
        batches_per_step: int = 1,
        seed: int = 0,
        image_size: int = 32,
        holdout: float = 0.2,
        root: str | None = None,
        download: bool = True,
    ) -> None:
        digits = Digits(image_size=image_size, holdout=holdout)
        mnist = MNIST(image_size=image_size, root=root, download=download)
        super().__init__(digits, mnist, batch_size, steps, batches_per_step, seed)


class DomainImages(Dataset):
    """Two datasets indexed by pairs [i_a, i_b]: items {"a": image, "b": image}."""

    def __init__(self, a: FolderImages, b: FolderImages) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return min(len(self.a), len(self.b))

    def __getitem__(self, pair: list[int]) -> Item:
        return {"a": self.a[pair[0]], "b": self.b[pair[1]]}


class UnpairedFolder(SummaryPart, LoaderItemData):
    """The CycleGAN layout: ``path``/trainA, trainB, testA, testB (images found recursively,
    sorted), each resized (shorter side) and centre-cropped to ``image_size`` as
    ``ImageFolder`` does; unlabelled; decoded per item by ``num_workers`` workers.

    Args:
        path: the folder holding the four domain folders.
        channels: 1 or 3, for both domains.
        on_error: files PIL cannot open stop the run naming the first (``raise``) or are
            skipped with a warning (``skip``).
    """

    kind = "domains"
    labelled = False  # labels for evaluation only

    def __init__(
        self,
        path: str,
        batch_size: int = 1,
        steps: int = 1000,
        batches_per_step: int = 1,
        seed: int = 0,
        image_size: int = 256,
        channels: int = 3,
        on_error: str = "raise",
        num_workers: int = 2,
    ) -> None:
        super().__init__(
            batch_size,
            steps,
            batches_per_step,
            seed,
            image_size,
            channels,
            0,
            num_workers=num_workers,
        )
        self.decoding = Decoding(on_error)
        self.path, self.on_error = Path(path).expanduser().absolute(), on_error
        self._files: dict[str, list[Path]] = {}

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.kind, {"a": self.image_shape, "b": self.image_shape})

    def files(self, split: str, domain: str) -> list[Path]:
        """The images of ``domain`` in ``split`` (``trainA``, ``testB``, ...), checked once."""
        check_split(split)
        check_domain(domain)
        folder = self.path / f"{split}{domain.upper()}"
        if folder.name not in self._files:
            files = layout_files(folder, f"{split} images of domain {domain.upper()}", LAYOUT)
            self._files[folder.name] = readable(files, folder, self.on_error)
        return self._files[folder.name]

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "test"):  # evaluation uses the test folders
            for domain in DOMAINS:
                self.files(split, domain)

    def domain_data(self, domain: str) -> ImageFolder:
        """Domain ``a`` or ``b``'s training images as an image folder (no classifier)."""
        check_domain(domain)
        return ImageFolder(
            str(self.path / f"train{domain.upper()}"), image_size=self.image_size,
            channels=self.channels, on_error=self.on_error, num_workers=self.num_workers,
        )  # fmt: skip

    def domain_dataset(self, split: str, domain: str) -> FolderImages:
        paths = [str(p) for p in self.files(split, domain)]
        return FolderImages(paths, self.channels, self.image_size, self.decoding)

    def summary(self, module: Any = None) -> dict[str, Any]:
        return self.decoding.summary()

    def dataset(self, split: str) -> Dataset:
        return DomainImages(*(self.domain_dataset(split, d) for d in DOMAINS))

    def _item_stream(self, data: DomainImages, rank: int) -> ZipStream:  # type: ignore[override]
        sizes = (len(data.a), len(data.b))
        per_item = self.batches_per_step * self.batch_size
        return zip_stream(self.seed, rank, sizes, per_item, torch.device("cpu"))

    def _head(self, data: DomainImages, n: int | None, split: str) -> list:  # type: ignore[override]
        return head_pairs((len(data.a), len(data.b)), n, split).tolist()

    def real_images(
        self, split: str = "train", n: int | None = None, domain: str = "b"
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` images of ``domain`` ("b" by default) of ``split`` in [-1, 1] on
        the CPU, decoded by the workers (no labels)."""
        data = self.domain_dataset(split, domain)
        idx = first(len(data), n, split).tolist()
        subset = Subset(data, idx)
        loader = DataLoader(subset, 256, num_workers=self.num_workers, collate_fn=Collate(False))
        try:
            batches = list(loader)
        except UserError as err:  # an image that fails to decode, named in one line
            raise UserError(worker_message(err)) from None
        return torch.cat(batches) if batches else torch.empty(0, *self.image_shape), None


__all__ = ["DOMAINS", "Digits2MNIST", "DomainSource", "UnpairedFolder", "UnpairedImages"]
