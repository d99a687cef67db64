"""The SNGAN / WGAN-GP ResNets for 32x32 images (Miyato et al. 2018, appendix B, table 4;
Gulrajani et al. 2017, appendix F), also built for 16 and 64 px by changing the number of
up / down blocks, with the class-conditional variants of Miyato & Koyama 2018."""

from __future__ import annotations

import math
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.nets.layers import (
    ProjectionHead,
    apply_norm,
    apply_spectral_norm,
    check_at_least,
    check_choice,
    check_image_args,
    check_labels,
    check_shape,
    generator_norm,
    make_norm2d,
)

D_NORMS = ("none", "layer")
_RESIDUAL_GAIN = math.sqrt(2.0)  # Glorot-uniform gains of the reference code (sngan_projection)
M = TypeVar("M", bound=nn.Module)


def _glorot(module: M, gain: float = 1.0) -> M:
    nn.init.xavier_uniform_(module.weight, gain)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return module


def _conv(c_in: int, c_out: int, kernel: int, gain: float = _RESIDUAL_GAIN) -> nn.Conv2d:
    return _glorot(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2), gain)


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GBlock(nn.Module):
    """Up residual block: BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus an upsample +
    1x1-conv shortcut; the BNs are class-conditional when ``num_classes > 0``."""

    def __init__(self, c_in: int, c_out: int, num_classes: int = 0) -> None:
        super().__init__()
        self.norm1 = generator_norm(c_in, num_classes)
        self.conv1 = _conv(c_in, c_out, 3)
        self.norm2 = generator_norm(c_out, num_classes)
        self.conv2 = _conv(c_out, c_out, 3)
        self.shortcut = _conv(c_in, c_out, 1, gain=1.0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.conv1(_up(F.relu(apply_norm(self.norm1, x, y))))  # (B, C_out, 2H, 2W)
        h = self.conv2(F.relu(apply_norm(self.norm2, h, y)))
        return h + self.shortcut(_up(x))


class OptimizedDBlock(nn.Module):
    """First block of D: conv3x3-ReLU-conv3x3-avgpool, plus an avgpool + 1x1-conv shortcut
    (no ReLU on the raw image; Miyato et al. 2018, appendix B)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3)
        self.conv2 = _conv(c_out, c_out, 3)
        self.shortcut = _conv(c_in, c_out, 1, gain=1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)  # (B, C_out, H/2, W/2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """Residual block of D: (norm)-ReLU-conv3x3-(norm)-ReLU-conv3x3-(avgpool), with a
    1x1-conv (+ avgpool) shortcut when the block downsamples or changes channels. The
    optional layer norm sits before each ReLU, as in the WGAN-GP ResNet critic."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, norm: str = "none") -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1 = make_norm2d(norm, c_in)
        self.conv1 = _conv(c_in, c_out, 3)
        self.norm2 = make_norm2d(norm, c_out)
        self.conv2 = _conv(c_out, c_out, 3)
        learnable = downsample or c_in != c_out
        self.shortcut = _conv(c_in, c_out, 1, gain=1.0) if learnable else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        skip = self.shortcut(x)
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)  # (B, C_out, H/2, W/2)
        return h + skip


class ResNetGenerator(nn.Module):
    """SNGAN / WGAN-GP ResNet generator: z (B, latent_dim) -> linear -> 4x4 x width, one up
    block per doubling (3 at 32 px), BN-ReLU-conv3x3-tanh -> (B, channels, S, S) in [-1, 1].

    Args:
        latent_dim: size of z.
        image_size: 16, 32 (the papers) or 64: 2, 3 or 4 up blocks.
        channels: 1 or 3.
        width: channels of every block (WGAN-GP: 128, SNGAN: 256).
        num_classes: if > 0, the block BNs are class-conditional (Miyato & Koyama 2018; the
            final BN stays unconditional, as in their code) and ``forward`` needs labels y (B,).
    """

    def __init__(
        self,
        latent_dim: int,
        image_size: int = 32,
        channels: int = 3,
        width: int = 128,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args("ResNetGenerator", image_size, channels, width, num_classes)
        check_at_least("ResNetGenerator", 1, latent_dim=latent_dim)
        self.latent_dim, self.num_classes, self.width = latent_dim, num_classes, width
        self.image_shape = (channels, image_size, image_size)
        self.linear = _glorot(nn.Linear(latent_dim, width * 4 * 4))
        num_up = int(math.log2(image_size)) - 2  # 4x4 -> image_size
        self.blocks = nn.ModuleList(GBlock(width, width, num_classes) for _ in range(num_up))
        self.norm = nn.BatchNorm2d(width)
        self.out = _conv(width, channels, 3, gain=1.0)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, (self.latent_dim,), "ResNetGenerator", "z")
        check_labels(y, z.shape[0], self.num_classes, "ResNetGenerator")
        h = self.linear(z).view(z.shape[0], self.width, 4, 4)  # (B, width, 4, 4)
        for block in self.blocks:
            h = block(h, y)  # (B, width, 2H, 2W)
        return torch.tanh(self.out(F.relu(self.norm(h))))  # (B, channels, S, S)


class ResNetDiscriminator(nn.Module):
    """SNGAN / WGAN-GP ResNet discriminator: images (B, channels, S, S) -> raw scores (B, 1).

    An optimized first block and down blocks to 8x8 (2 down blocks at 32 px), two blocks
    without downsampling, ReLU, global sum pooling, linear (Miyato et al. 2018, table 4).

    Args:
        image_size: 16, 32 (the papers) or 64: 1, 2 or 3 downsampling blocks.
        channels: 1 or 3.
        width: channels of every block (128 in both papers).
        norm: ``none`` or ``layer`` in the residual blocks (WGAN-GP critic).
        spectral_norm: spectral normalization of every conv, linear and embedding weight
            (Miyato et al. 2018); on by default as in SNGAN.
        num_classes: if > 0, a projection head (Miyato & Koyama 2018, eq. 3) and
            ``forward`` needs labels y (B,).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: int = 128,
        norm: str = "none",
        spectral_norm: bool = True,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args(
            "ResNetDiscriminator", image_size, channels, width, num_classes, packable=True
        )
        check_choice("ResNetDiscriminator", "norm", norm, D_NORMS)
        self.num_classes = num_classes
        self.image_shape = (channels, image_size, image_size)
        num_down = int(math.log2(image_size)) - 3  # image_size -> 8x8
        blocks: list[nn.Module] = [OptimizedDBlock(channels, width)]
        blocks += [DBlock(width, width, True, norm) for _ in range(num_down - 1)]
        blocks += [DBlock(width, width, False, norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = ProjectionHead(width, num_classes)
        _glorot(self.head.linear)
        if self.head.embed is not None:
            _glorot(self.head.embed)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, self.image_shape, "ResNetDiscriminator", "images")
        check_labels(y, x.shape[0], self.num_classes, "ResNetDiscriminator")
        h = F.relu(self.blocks(x))  # (B, width, 8, 8)
        return self.head(h.sum(dim=(2, 3)), y)  # global sum pooling -> (B, width) -> (B, 1)


__all__ = ["ResNetDiscriminator", "ResNetGenerator"]
