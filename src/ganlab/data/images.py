"""Image data modules: digits, stacked digits, MNIST, Fashion-MNIST, Stacked MNIST, CIFAR-10
and any folder of images.

Served for ``steps`` G updates of ``per_step`` real batches each (``DataModule.serve``),
every module yields x (per_step, batch_size, C, H, W) float32 in [-1, 1], and for labelled
sets the tuple (x, y) with int64 labels y (per_step, batch_size). Samples are drawn epoch by epoch
without replacement from permutations seeded per (rank seed, epoch); the state to checkpoint
is the position (``ganlab.data.sampling``). ``real_images(split, n)`` gives real images for
metrics and classifiers.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganlab.data.archives import ArrayImages, data_root, ensure_files, torchvision_set
from ganlab.data.folder import ImageFolder
from ganlab.data.image_base import InMemoryImageData, LoaderImageData
from ganlab.data.sources import SPLITS, StackedSource, TensorSource, resize, stack
from ganlab.errors import UserError
from ganlab.rng import stream_seed

__all__ = [
    "CIFAR10",
    "MNIST",
    "Digits",
    "FashionMNIST",
    "ImageFolder",
    "StackedDigits",
    "StackedMNIST",
]

# The digits' held-out split is fixed, whatever the run seed: every run is evaluated on the
# same images.
DIGITS_SPLIT_SEED = 1797
DEFAULT_HOLDOUT = 0.2  # of each class: the "test" split


@cache
def _digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 8x8 digits (values 0..16) as (N, 1, 8, 8) in [0, 255], labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images).float().mul_(255 / 16).unsqueeze(1)
    return images, torch.from_numpy(data.target).long()


def stratified_split(labels: Tensor, holdout: float, seed: int) -> tuple[Tensor, Tensor]:
    """Sorted (train, held-out) indices: round(holdout·count) of each class held out, chosen
    by a permutation seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    held = []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        held.append(members[: round(holdout * len(members))])
    test = torch.cat(held).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[test] = False
    return keep.nonzero().squeeze(1), test


class Digits(InMemoryImageData):
    """scikit-learn's 8x8 digits (UCI optdigits test set, 1,797 images, 10 classes), scaled to
    [-1, 1] and resized (bilinear) to ``image_size``; a stratified ``holdout`` fraction with a
    fixed split seed is the "test" split. Held on the training device. ``fraction`` < 1
    trains on that stratified share of the training split (the same images for every run
    seed: small-data experiments); the test split is unchanged."""

    classifier = "digits"

    def __init__(
        self,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 32,
        holdout: float = DEFAULT_HOLDOUT,
        fraction: float = 1.0,
    ) -> None:
        super().__init__(batch_size, seed, image_size, 1, 10)
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8 for digits (8x8 images), got {image_size}")
        if not 0 <= holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {holdout}")
        if not 0 < fraction <= 1:
            raise ValueError(f"data.fraction must be in (0, 1], got {fraction}")
        self.holdout, self.fraction = holdout, fraction

    @property
    def cache_key(self) -> str:
        """Another hold-out, or a share of the training split, has real statistics of its own
        (the default split keeps the plain name, and the caches made with it)."""
        key = super().cache_key
        key += f"-holdout{self.holdout}" if self.holdout != DEFAULT_HOLDOUT else ""
        return key + (f"-fraction{self.fraction}" if self.fraction < 1 else "")

    def classifier_base(self) -> Digits:
        # the default hold-out: the classifier is part of the metric, not of the run's data
        return Digits(image_size=self.image_size)

    def load(self, split: str) -> TensorSource | StackedSource:
        images, labels = _digits()
        train, test = stratified_split(labels, self.holdout, DIGITS_SPLIT_SEED)
        idx = train if split == "train" else test
        if split == "train" and self.fraction < 1:  # the same share of each class, fixed
            idx = idx[stratified_split(labels[idx], 1 - self.fraction, DIGITS_SPLIT_SEED)[0]]
        if len(idx) == 0:
            raise UserError(f"digits: holdout={self.holdout} leaves no images for '{split}'")
        return TensorSource(resize(images[idx], self.image_size), labels[idx])


class _Stacked:
    """Three images of the base set's split as R, G, B: 1,000 modes, label 100·d0 + 10·d1
    + d2; a fixed set of ``size`` index triples seeded with ``stack_seed``, composed on the
    fly from the base tensor (never materialized)."""

    def _stack(self, size: int, stack_seed: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1 stacked images, got {size}")
        self.channels, self.num_classes = 3, 1000
        self.size, self.stack_seed = size, stack_seed

    def load(self, split: str) -> TensorSource | StackedSource:
        base = super().load(split)  # type: ignore[misc]
        assert isinstance(base, TensorSource)
        return stack(base, self.size, stream_seed(self.stack_seed, SPLITS.index(split)))


class StackedDigits(_Stacked, Digits):
    """Three digits as the R, G, B channels (1,000 modes; the Stacked MNIST protocol of
    VEEGAN and PacGAN on the 8x8 digits): a fixed set of ``size`` triples, seeded with
    ``stack_seed``, drawn from the digits of the split; label 100·d0 + 10·d1 + d2."""

    def __init__(
        self,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 32,
        holdout: float = DEFAULT_HOLDOUT,
        size: int = 50_000,
        stack_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed, image_size, holdout)
        self._stack(size, stack_seed)


class MNIST(InMemoryImageData):
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 28x28 digits, resized (bilinear) to
    ``image_size``, from torchvision's raw IDX files under ``root`` (None: $GANLAB_DATA,
    else ./data), downloaded in ``prepare_data`` when ``download``. Held on the device."""

    torchvision_name = "MNIST"
    classifier: str | None = "mnist"

    def __init__(
        self,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 32,
        root: str | None = None,
        download: bool = True,
    ) -> None:
        super().__init__(batch_size, seed, image_size, 1, 10)
        self.root, self.download = data_root(root), download

    def prepare_data(self) -> None:
        ensure_files(self.torchvision_name, self.root, self.download)

    def classifier_base(self) -> MNIST:
        if self.classifier is None:
            return super().classifier_base()
        return MNIST(image_size=self.image_size, root=str(self.root), download=self.download)

    def load(self, split: str) -> TensorSource | StackedSource:
        data = torchvision_set(self.torchvision_name, self.root, split)
        images = resize(data.data.unsqueeze(1), self.image_size)  # (N, 28, 28) -> (N, 1, S, S)
        return TensorSource(images, data.targets.long())


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao et al. 2017): MNIST's format with 10 classes of clothing, under
    ``root``/FashionMNIST/raw."""

    torchvision_name = "FashionMNIST"
    classifier = None


class StackedMNIST(_Stacked, MNIST):
    """Stacked MNIST (Metz et al. 2017; VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al.
    2018): three MNIST digits of the split as R, G, B (1,000 modes), a fixed set of ``size``
    triples (128,000 by default, as in VEEGAN) seeded with ``stack_seed``, composed on the
    fly; label 100·d0 + 10·d1 + d2."""

    def __init__(
        self,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 32,
        root: str | None = None,
        download: bool = True,
        size: int = 128_000,
        stack_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed, image_size, root, download)
        self._stack(size, stack_seed)


class CIFAR10(LoaderImageData):
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 32x32 RGB images in 10 classes, from
    torchvision's ``cifar-10-batches-py`` under ``root`` (None: $GANLAB_DATA, else ./data),
    served by ``num_workers`` DataLoader workers (resized per item if ``image_size`` != 32)."""

    def __init__(
        self,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 32,
        root: str | None = None,
        download: bool = True,
        num_workers: int = 2,
    ) -> None:
        super().__init__(batch_size, seed, image_size, 3, 10, num_workers=num_workers)
        self.root, self.download = data_root(root), download
        self._datasets: dict[str, ArrayImages] = {}

    def prepare_data(self) -> None:
        ensure_files("CIFAR10", self.root, self.download)

    def setup(self, stage: str | None = None) -> None:
        self.dataset("train")

    def dataset(self, split: str) -> Dataset:
        if split not in self._datasets:
            data = torchvision_set("CIFAR10", self.root, split)
            self._datasets[split] = ArrayImages(data.data, data.targets, self.image_size)
        return self._datasets[split]
