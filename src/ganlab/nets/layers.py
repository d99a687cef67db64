"""Pieces shared by the image networks: argument and input checks, normalization layers,
spectral normalization and the projection head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

IMAGE_SIZES = (16, 32, 64)
IMAGE_CHANNELS = (1, 3)
NORMS = ("batch", "layer", "instance", "none")
SPECTRAL_NORM_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)
_LABEL_DTYPES = (torch.int64, torch.int32)  # what nn.Embedding accepts


def check_choice(who: str, name: str, value: object, choices: Sequence[object]) -> None:
    """Raise ValueError naming ``value`` and the accepted ``choices``."""
    if value not in choices:
        accepted = ", ".join(str(c) for c in choices)
        raise ValueError(f"{who}: {name} must be one of {accepted}, got {value!r}")


def check_at_least(who: str, minimum: int, **values: int) -> None:
    """Raise ValueError for the first keyword argument below ``minimum``."""
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{who}: {name} must be >= {minimum}, got {value}")


def check_image_args(
    who: str, image_size: int, channels: int, width: int, num_classes: int, packable: bool = False
) -> None:
    """The constructor arguments every image network shares. A ``packable`` network (a
    discriminator) takes any number of channels: PacGAN's packed D reads m images
    concatenated on channels (Lin et al. 2018), 3m for RGB."""
    check_choice(who, "image_size", image_size, IMAGE_SIZES)
    if packable:
        check_at_least(who, 1, channels=channels)
    else:
        check_choice(who, "channels", channels, IMAGE_CHANNELS)
    check_at_least(who, 1, width=width)
    check_at_least(who, 0, num_classes=num_classes)


def check_shape(x: Tensor, expected: Sequence[int], who: str, what: str) -> None:
    """Raise ValueError unless ``x`` is (B, *expected), e.g.
    ``DCGANGenerator expects z (B, 100), got (4, 3)``."""
    if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != tuple(expected):
        dims = ", ".join(str(d) for d in expected)
        raise ValueError(f"{who} expects {what} (B, {dims}), got {tuple(x.shape)}")


def check_labels(y: Tensor | None, batch: int, num_classes: int, who: str) -> None:
    """Labels are required (B,) integers in [0, num_classes) for a conditional network
    (``num_classes > 0``) and must be None for an unconditional one."""
    if num_classes == 0:
        if y is not None:
            raise ValueError(f"{who} is unconditional (num_classes=0) but got labels y; pass None")
        return
    if y is None:
        raise ValueError(
            f"{who} is conditional (num_classes={num_classes}) and needs labels y of shape (B,)"
        )
    if tuple(y.shape) != (batch,) or y.dtype not in _LABEL_DTYPES:
        raise ValueError(
            f"{who} expects labels y ({batch},) of dtype int64, "
            f"got {tuple(y.shape)} of dtype {y.dtype}"
        )
    if batch:  # checked on the device: no host sync in the training step (RuntimeError)
        in_range = ((y >= 0) & (y < num_classes)).all()
        torch._assert_async(in_range, f"{who} expects labels y in [0, {num_classes})")


def make_norm2d(name: str, channels: int) -> nn.Module:
    """A normalization layer for (B, C, H, W) feature maps: ``batch``, ``layer`` (over C, H, W
    per sample, per-channel gain and bias, as in the WGAN-GP ResNet critic), ``instance`` (over
    H, W per sample and channel) or ``none``. Critics trained with a gradient penalty should
    not use ``batch``: the penalty is per sample (Gulrajani et al. 2017, sec. 4)."""
    check_choice("make_norm2d", "norm", name, NORMS)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "instance":
        return nn.GroupNorm(channels, channels)
    return nn.Identity()


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018, sec. 4):
    an affine-free BatchNorm2d, then a gain and a shift looked up per class.

    Args:
        num_features: channels C of the (B, C, H, W) input.
        num_classes: number of classes; ``forward`` takes labels y (B,) in [0, num_classes).
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        who = "ConditionalBatchNorm2d"
        check_at_least(who, 1, num_features=num_features, num_classes=num_classes)
        self.num_features, self.num_classes = num_features, num_classes
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.shift = nn.Embedding(num_classes, num_features)
        # DCGAN's BN gain init N(1, 0.02) (Radford et al. 2016): near the identity, yet the
        # class already changes the samples at initialization
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.bn(x)  # (B, C, H, W)
        return h * self.gain(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


def generator_norm(channels: int, num_classes: int) -> nn.Module:
    """BatchNorm2d, or ConditionalBatchNorm2d when ``num_classes > 0``."""
    if num_classes > 0:
        return ConditionalBatchNorm2d(channels, num_classes)
    return nn.BatchNorm2d(channels)


def apply_norm(norm: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """Call ``norm`` on ``x``, with the labels when it is class-conditional."""
    if isinstance(norm, ConditionalBatchNorm2d):
        return norm(x, y)
    return norm(x)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) of the weight of every Conv2d,
    ConvTranspose2d, Linear and Embedding in ``module`` (in place); returns ``module``."""
    for m in list(module.modules()):  # listed first: registering adds submodules
        if isinstance(m, SPECTRAL_NORM_TYPES) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m)
    return module


class ProjectionHead(nn.Module):
    """Output layer of a projection discriminator (Miyato & Koyama 2018, eq. 3):
    ``linear(h) + <embed(y), h>`` for features h (B, features); only the linear term when
    ``num_classes == 0``. Returns raw scores (B, 1)."""

    def __init__(self, features: int, num_classes: int = 0) -> None:
        super().__init__()
        check_at_least("ProjectionHead", 1, features=features)
        check_at_least("ProjectionHead", 0, num_classes=num_classes)
        self.num_classes = num_classes
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes > 0 else None

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(h)  # (B, 1)
        if self.embed is None:
            return out
        if y is None:
            raise ValueError(f"ProjectionHead has num_classes={self.num_classes}; pass labels y")
        # the class enters only through an inner product with the features (eq. 3)
        return out + (self.embed(y) * h).sum(dim=1, keepdim=True)
