"""DCGAN generator and discriminator (Radford et al. 2016) for 16, 32 and 64 pixel images,
with the class-conditional variants of Miyato & Koyama 2018."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.nets.layers import (
    NORMS,
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

INIT_STD = 0.02  # Radford et al. 2016, sec. 4: all weights from N(0, 0.02)


def _widths(image_size: int, width: int) -> list[int]:
    """Channels of the stride-2 stages from 4x4 up: one per doubling of the side, width * 2**k
    (the PyTorch DCGAN example; 64 px: w, 2w, 4w, 8w)."""
    doublings = int(math.log2(image_size)) - 2  # 16: 2, 32: 3, 64: 4
    return [width * 2**k for k in range(doublings)]


def _init_dcgan(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), norm gains ~ N(1, 0.02), biases 0 (Radford et al. 2016, sec. 4).
    Conditional BN keeps its own init (gains N(1, 0.02), shifts 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, ProjectionHead) and m.embed is not None:
            nn.init.normal_(m.embed.weight, 0.0, INIT_STD)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, fig. 1): z (B, latent_dim) -> images
    (B, channels, image_size, image_size) in [-1, 1].

    z is projected to 4x4 by a full-size transposed conv, then stride-2 transposed convs
    (kernel 4) + BatchNorm + ReLU halve the channels while doubling the side; the last one
    maps to ``channels`` and ends in tanh.

    Args:
        latent_dim: size of z.
        image_size: 16, 32 or 64 (one stride-2 layer per doubling from 4x4).
        channels: 1 or 3.
        width: channels of the last hidden layer; earlier ones are width * 2**k
            (8w, 4w, 2w, w at 64 px, as in the PyTorch DCGAN example).
        num_classes: if > 0, every BatchNorm is class-conditional (de Vries et al. 2017;
            Miyato & Koyama 2018), a learned class embedding of min(num_classes,
            latent_dim) dims (N(0, 1) init) is read beside z, and ``forward`` needs
            labels y (B,).
    """

    def __init__(
        self,
        latent_dim: int,
        image_size: int = 32,
        channels: int = 1,
        width: int = 64,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args("DCGANGenerator", image_size, channels, width, num_classes)
        check_at_least("DCGANGenerator", 1, latent_dim=latent_dim)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.image_shape = (channels, image_size, image_size)
        widths = _widths(image_size, width)[::-1]  # 64 px: 8w, 4w, 2w, w
        # a conditional G also reads a learned class embedding beside z (as the cGAN of
        # Mirza & Osindero 2014 reads y): with conditional BatchNorm alone the class took
        # thousands of steps to show on digits; with it, a few hundred
        embed_dim = min(num_classes, latent_dim)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.project = nn.ConvTranspose2d(latent_dim + embed_dim, widths[0], 4, 1, 0, bias=False)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.norms = nn.ModuleList(generator_norm(c, num_classes) for c in widths)
        self.out = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)
        _init_dcgan(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, (self.latent_dim,), "DCGANGenerator", "z")
        check_labels(y, z.shape[0], self.num_classes, "DCGANGenerator")
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)  # (B, latent_dim + embed_dim)
        h = z[:, :, None, None]  # (B, latent_dim (+ embed_dim), 1, 1)
        for conv, norm in zip([self.project, *self.ups], self.norms, strict=True):
            h = F.relu(apply_norm(norm, conv(h), y))  # (B, C_k, 4 * 2**k, 4 * 2**k)
        return torch.tanh(self.out(h))  # (B, channels, image_size, image_size)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2016): images (B, channels, image_size, image_size)
    -> raw scores (B, 1), no sigmoid.

    Stride-2 convs (kernel 4) + LeakyReLU(0.2) down to 4x4, a norm on every conv but the
    first, then flatten + linear (the same map as the reference's final 4x4 conv).

    Args:
        image_size: 16, 32 or 64.
        channels: 1 or 3.
        width: channels of the first conv; later ones are width * 2**k.
        norm: ``batch``, or for critics with a gradient penalty (Gulrajani et al. 2017)
            ``layer`` (over C, H, W), ``instance`` or ``none``.
        spectral_norm: spectral normalization of every conv, linear and embedding weight
            (Miyato et al. 2018).
        num_classes: if > 0, a projection head (Miyato & Koyama 2018, eq. 3) and
            ``forward`` needs labels y (B,).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        width: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args(
            "DCGANDiscriminator", image_size, channels, width, num_classes, packable=True
        )
        check_choice("DCGANDiscriminator", "norm", norm, NORMS)
        self.num_classes = num_classes
        self.image_shape = (channels, image_size, image_size)
        widths = _widths(image_size, width)
        # no norm on the first layer (Radford et al. 2016, sec. 3)
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none")  # norms carry a bias
            layers += [conv, make_norm2d(norm, c_out), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(widths[-1] * 4 * 4, num_classes)
        _init_dcgan(self)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, self.image_shape, "DCGANDiscriminator", "images")
        check_labels(y, x.shape[0], self.num_classes, "DCGANDiscriminator")
        h = self.features(x)  # (B, C, 4, 4)
        return self.head(h.flatten(1), y)  # (B, 1)


__all__ = ["DCGANDiscriminator", "DCGANGenerator"]
