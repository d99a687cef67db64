"""Splits held in memory as tensors, without Lightning: the data modules
(``ganlab.data.image_base``) serve batches from them, and the commands beside training
import them without importing Lightning."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.data.sampling import image_batch

SPLITS = ("train", "test")


def resize(images: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """Images (N, C, h, w) with values in [0, 255] -> uint8 (N, C, size, size), bilinear
    (antialiased when shrinking); non-square images are stretched, so crop first."""
    if images.dtype == torch.uint8 and images.shape[-2:] == (size, size):
        return images
    out = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True)
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for c in images.split(chunk)
    ]
    return torch.cat(out)


@dataclass
class TensorSource:
    """A split held as one tensor: uint8 images (N, C, H, W), int64 labels (N,) or None."""

    images: Tensor
    labels: Tensor | None

    def __len__(self) -> int:
        return len(self.images)

    def take(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        # index_select, not images[idx]: ~20x faster for a batch on the CPU
        labels = None if self.labels is None else self.labels.index_select(0, idx)
        return self.images.index_select(0, idx), labels

    def batch(self, idx: Tensor, per_step: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """The samples at ``idx`` as a batch: x in [-1, 1], or (x, y) when labelled."""
        return image_batch(*self.take(idx), per_step)

    def to(self, device: torch.device) -> TensorSource:
        labels = None if self.labels is None else self.labels.to(device)
        return TensorSource(self.images.to(device), labels)


@dataclass
class StackedSource:
    """Stacked digits (Metz et al. 2017; Srivastava et al. 2017, VEEGAN; Lin et al. 2018,
    PacGAN): sample i has base digits ``triples[i]`` as its R, G, B channels and label
    100·d0 + 10·d1 + d2 (1,000 modes). Composed on the fly, never materialized."""

    base: TensorSource  # (M, 1, H, W) single-channel digits with labels
    triples: Tensor  # (S, 3) indices into base

    def __len__(self) -> int:
        return len(self.triples)

    def take(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        t = self.triples.index_select(0, idx).view(-1)  # (n·3,) digits, R G B per sample
        images, digits = self.base.take(t)
        assert digits is not None
        images = images.view(len(idx), 3, *images.shape[2:])  # (n·3, 1, H, W) -> (n, 3, H, W)
        digits = digits.view(len(idx), 3)
        return images, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

    def batch(self, idx: Tensor, per_step: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """The samples at ``idx`` as a batch: (x, y), x in [-1, 1]."""
        return image_batch(*self.take(idx), per_step)

    def to(self, device: torch.device) -> StackedSource:
        return StackedSource(self.base.to(device), self.triples.to(device))


def stack(base: TensorSource, size: int, seed: int) -> StackedSource:
    """A fixed set of ``size`` triples of uniformly drawn base digits, seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return StackedSource(base, torch.randint(len(base), (size, 3), generator=generator))


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def first(count: int, n: int | None, split: str) -> Tensor:
    """Indices of the first ``n`` (all when None) of ``count`` samples of ``split``."""
    if n is None:
        return torch.arange(count)
    if not 0 <= n <= count:
        raise ValueError(f"real_images: n={n} but the {split} split has {count} images")
    return torch.arange(n)
