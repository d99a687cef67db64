"""The small DCGAN of the unrolled GAN's stacked-MNIST experiment (Metz et al. 2017, sec. 3.3
and app. C; PacGAN's code, ``stacked_MNIST_experiments/unrolled_GAN_experiment``), whose
discriminator is a fraction of the generator's size: the setting of PacGAN's table 3 (Lin
et al. 2018), where DCGAN, unrolling and packing separate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.nets.layers import check_at_least, check_image_args, check_shape

INIT_STD = 0.02  # weights ~ N(0, 0.02) in the reference code (ops.py)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _unconditional(who: str, num_classes: int) -> None:
    if num_classes:
        raise ValueError(f"{who} is unconditional: set model.conditional=false (or model=dcgan)")


class SmallDCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, channels, S, S) in [-1, 1]: a linear map to 8w x S/8 x
    S/8, then three 3x3 stride-2 transposed convs (8w -> 4w -> 2w -> w channels), each with
    BatchNorm and ReLU, and a 3x3 conv to ``channels`` with tanh. The reference (w = 8:
    64-32-16-8 channels) is at 28 px (4-7-14-28); here S is 16, 32 or 64 (S/8 doubled 3
    times).
    """

    def __init__(
        self,
        latent_dim: int,
        image_size: int = 32,
        channels: int = 3,
        width: int = 8,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args("SmallDCGANGenerator", image_size, channels, width, 0)
        _unconditional("SmallDCGANGenerator", num_classes)
        check_at_least("SmallDCGANGenerator", 1, latent_dim=latent_dim)
        self.latent_dim, self.start = latent_dim, image_size // 8
        self.image_shape = (channels, image_size, image_size)
        widths = [8 * width, 4 * width, 2 * width, width]
        self.project = nn.Linear(latent_dim, widths[0] * self.start**2, bias=False)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 3, 2, padding=1, output_padding=1, bias=False)
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in widths)
        self.out = nn.Conv2d(width, channels, 3, 1, padding=1)
        _init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, (self.latent_dim,), "SmallDCGANGenerator", "z")
        h = self.project(z).view(z.shape[0], -1, self.start, self.start)  # (B, 8w, S/8, S/8)
        h = F.relu(self.norms[0](h))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            h = F.relu(norm(up(h)))  # (B, C_k, S/4 .. S)
        return torch.tanh(self.out(h))  # (B, channels, S, S)


class SmallDCGANDiscriminator(nn.Module):
    """Images (B, channels, S, S) -> raw scores (B, 1): three 3x3 stride-2 convs (w -> 2w ->
    4w channels), each with BatchNorm (the first too) and LeakyReLU(0.3), then a linear map.
    w = 2 is the reference's D = 1/4 G, w = 4 its D = 1/2 G. Any number of input channels
    (a packed D reads 3m)."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: int = 2,
        norm: str = "batch",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        check_image_args("SmallDCGANDiscriminator", image_size, channels, width, 0, packable=True)
        _unconditional("SmallDCGANDiscriminator", num_classes)
        if norm not in ("batch", "none"):
            raise ValueError(f"SmallDCGANDiscriminator: norm must be batch or none, got {norm!r}")
        self.image_shape = (channels, image_size, image_size)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([channels, width, 2 * width], [width, 2 * width, 4 * width],
                               strict=True):  # fmt: skip
            layers.append(nn.Conv2d(c_in, c_out, 3, 2, padding=1, bias=norm == "none"))
            layers += [nn.BatchNorm2d(c_out)] if norm == "batch" else []
            layers.append(nn.LeakyReLU(0.3))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * width * (image_size // 8) ** 2, 1)
        _init(self)

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, self.image_shape, "SmallDCGANDiscriminator", "images")
        return self.head(self.features(x).flatten(1))  # (B, 1)


__all__ = ["SmallDCGANDiscriminator", "SmallDCGANGenerator"]
