"""Two unpaired image domains (CycleGAN, Zhu et al. 2017): items {"a", "b"} drawn
independently, with the domains' labels when they have them (for evaluation only).

- ``UnpairedImages``: any two image sets held on the training device; ``Digits2MNIST``:
  A = scikit-learn's 8x8 digits upsampled, B = MNIST (both offline).
- ``UnpairedFolder``: the CycleGAN layout ``trainA/ trainB/ testA/ testB/`` (horse2zebra,
  ...), decoded per item by DataLoader workers.

Each training step yields {"a": (R, B, C_a, S, S), "b": (R, B, C_b, S, S)} in [-1, 1], plus
"label_a" / "label_b": (R, B) int64 for labelled domains; R = per_step (``DataModule.serve``).
A and B are drawn by two position-based streams with different seeds, so their orders are
independent and a checkpoint still holds only the position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from ganlab.data.base import CPU
from ganlab.data.folder import FolderData, FolderImages, ImageFolder, layout_files
from ganlab.data.image_base import ImageDataModule, InMemoryImageData
from ganlab.data.images import MNIST, Digits
from ganlab.data.sampling import (
    Collate,
    DictCollate,
    IndexStream,
    Item,
    ZipStream,
    concat,
    load_batches,
    to_batch,
    to_float,
)
from ganlab.data.sources import StackedSource, TensorSource, check_split, first
from ganlab.data.spec import DataSpec
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

    def batch(self, idx: Tensor, per_step: int | None = None) -> Item:
        """The images (and labels) at index pairs ``idx`` (n, 2) as a batch."""
        return to_batch(self.take(idx), per_step)

    def to(self, device: torch.device) -> DomainSource:
        return DomainSource(self.a.to(device), self.b.to(device))


def zip_stream(seed: int, rank: int, sizes: tuple[int, int], per_item: int, device) -> ZipStream:
    """Independent streams of A and B: seeds (seed, rank, 0) and (seed, rank, 1)."""
    a, b = (
        IndexStream(n, per_item, stream_seed(seed, rank, d), device) for d, n in enumerate(sizes)
    )
    return ZipStream(a, b)


class UnpairedImages(InMemoryImageData):
    """Two image sets as unpaired domains A and B, held on the training device.

    Args:
        a, b: the domains (any ``ImageDataModule`` of the same ``image_size``; only their
            splits are used). Labels are kept when a domain has them; ``num_classes`` is
            theirs when both have the same, else 0 (no label preservation to score).
        batch_size: images of each domain per step (CycleGAN: 1).
        seed: as for every image data module.
    """

    kind = "domains"
    labelled = True  # labels for evaluation only

    def __init__(
        self, a: ImageDataModule, b: ImageDataModule, batch_size: int = 1, seed: int = 0
    ) -> None:
        if a.image_size != b.image_size:
            raise UserError(
                f"the two domains need the same image_size, got {a.image_size} (a: "
                f"{type(a).__name__}) and {b.image_size} (b: {type(b).__name__})"
            )
        classes = a.num_classes if a.num_classes == b.num_classes else 0
        super().__init__(batch_size, seed, a.image_size, b.channels, classes)
        self.domains = {"a": a, "b": b}

    @property
    def spec(self) -> DataSpec:
        a, b = self.domains["a"], self.domains["b"]
        return DataSpec(
            self.kind,
            {"a": a.image_shape, "b": b.image_shape},
            num_classes=self.num_classes,
            classifiers={"a": a.spec.classifier, "b": b.spec.classifier},
            modes=self.modes,
        )

    def prepare_data(self) -> None:
        for domain in self.domains.values():
            domain.prepare_data()

    def load(self, split: str) -> DomainSource:
        return DomainSource(*(self.domains[d].tensor_source(split) for d in DOMAINS))

    def _train_stream(self, source: DomainSource, rank: int, device: torch.device) -> ZipStream:
        sizes = (len(source.a), len(source.b))
        return zip_stream(self.seed, rank, sizes, self.per_step * self.batch_size, device)

    def _head(self, source: DomainSource, n: int | None, split: str) -> Tensor:
        return head_pairs((len(source.a), len(source.b)), n, split)

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
        seed: int = 0,
        image_size: int = 32,
        holdout: float = 0.2,
        root: str | None = None,
        download: bool = True,
    ) -> None:
        digits = Digits(image_size=image_size, holdout=holdout)
        mnist = MNIST(image_size=image_size, root=root, download=download)
        super().__init__(digits, mnist, batch_size, seed)


class DomainImages(Dataset):
    """Two datasets indexed by pairs [i_a, i_b]: items {"a": image, "b": image}."""

    def __init__(self, a: FolderImages, b: FolderImages) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return min(len(self.a), len(self.b))

    def __getitem__(self, pair: list[int]) -> Item:
        return {"a": self.a[pair[0]], "b": self.b[pair[1]]}


class UnpairedFolder(FolderData):
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

    def __init__(
        self,
        path: str,
        batch_size: int = 1,
        seed: int = 0,
        image_size: int = 256,
        channels: int = 3,
        on_error: str = "raise",
        num_workers: int = 2,
    ) -> None:
        super().__init__(path, batch_size, seed, image_size, channels, on_error, num_workers)

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.kind, {"a": self.image_shape, "b": self.image_shape})

    def _find(self, split: str, domain: str) -> tuple[Path, Callable[[Path], list[Path]]]:
        """The folder of ``domain`` in ``split`` (``trainA``, ``testB``, ...) and how its
        files are found."""
        check_split(split)
        check_domain(domain)
        what = f"{split} images of domain {domain.upper()}"
        return self.path / f"{split}{domain.upper()}", partial(
            layout_files, what=what, layout=LAYOUT
        )

    def files(self, split: str, domain: str) -> list[Path]:
        """The images of ``domain`` in ``split`` (``trainA``, ``testB``, ...), checked once."""
        return self.read_folder(*self._find(split, domain))

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
        return self.images(*self._find(split, domain))

    def dataset(self, split: str) -> Dataset:
        return DomainImages(*(self.domain_dataset(split, d) for d in DOMAINS))

    def collate(self, per_step: int | None = None) -> DictCollate:
        return DictCollate(per_step)

    def _train_stream(self, data: DomainImages, rank: int) -> ZipStream:
        sizes = (len(data.a), len(data.b))
        return zip_stream(self.seed, rank, sizes, self.per_step * self.batch_size, CPU)

    def _head(self, data: DomainImages, n: int | None, split: str) -> list:
        return head_pairs((len(data.a), len(data.b)), n, split).tolist()

    def val_items(self, n: int | None = None, split: str = "test") -> Item:
        """The first ``n`` items of ``split`` (held out: "test"; all when it has fewer),
        decoded by the workers, as a batch without the step dim, on the CPU: a fixed
        validation set."""
        n = None if n is None else min(n, len(self.dataset(split)))
        return concat(self.load_head(split, n))

    def real_images(
        self, split: str = "train", n: int | None = None, domain: str = "b"
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` images of ``domain`` ("b" by default) of ``split`` in [-1, 1] on
        the CPU, decoded by the workers (no labels)."""
        data = self.domain_dataset(split, domain)
        subset = Subset(data, first(len(data), n, split).tolist())
        batches = load_batches(subset, Collate(False), self.num_workers)
        return torch.cat(batches) if batches else torch.empty(0, *self.image_shape), None


__all__ = ["DOMAINS", "Digits2MNIST", "DomainSource", "UnpairedFolder", "UnpairedImages"]
