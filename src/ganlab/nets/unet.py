"""The Pix2Pix U-Net generator (Isola et al. 2017, sec. 3.2.1 and appendix 6.1.1;
Ronneberger et al. 2015)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ganlab.nets.layers import check_at_least, check_shape
from ganlab.nets.translate_layers import conv_bias, init_normal, norm2d

WHO = "UNetGenerator"


def unet_depth(image_size: int) -> int:
    """Down-sampling layers from ``image_size`` to the 1x1 bottleneck: log2(image_size)
    (8 at 256 px, as the paper's encoder C64-C128-C256-C512-C512-C512-C512-C512)."""
    depth = int(math.log2(image_size)) if image_size >= 1 else 0
    if image_size < 8 or 2**depth != image_size:
        raise ValueError(f"{WHO}: image_size must be a power of two >= 8, got {image_size}")
    return depth


class UNetGenerator(nn.Module):
    """Pix2Pix U-Net: images (B, in_channels, S, S) -> (B, out_channels, S, S) in [-1, 1].

    Encoder: log2(S) layers of 4x4 stride-2 conv, C64-C128-C256-C512-C512... (widths double
    from ``width`` and stop at 8·width), LeakyReLU 0.2, no norm on the first layer nor on the
    1x1 bottleneck (the reference code: a norm over one pixel zeroes it). Decoder: mirrored
    ReLU-4x4 stride-2 transposed conv-norm layers; the output of decoder layer j is
    concatenated with the encoder layer of the same size (the skip between layer i and n-i);
    the last layer maps to ``out_channels`` and tanh.

    Dropout 0.5 in the ``dropout_blocks`` innermost decoder layers (the paper's CD512-CD1024-
    CD1024: 3) is the generator's only noise (sec. 2.1). It follows ``train()``/``eval()``;
    the paper also keeps it at test time, which a caller gets by sampling in train mode.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        image_size: side S, a power of two >= 8 (depth log2(S); 16, 32, 64 and 256 tested).
        width: channels of the first layer (64 in the paper).
        norm: ``batch`` (the paper), ``instance`` or ``none``.
        dropout: dropout probability of the inner decoder layers (0.5; 0 turns it off).
        dropout_blocks: how many innermost decoder layers have dropout (at most depth - 1).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 256,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
    ) -> None:
        super().__init__()
        depth = unet_depth(image_size)
        check_at_least(WHO, 1, in_channels=in_channels, out_channels=out_channels, width=width)
        check_at_least(WHO, 0, dropout_blocks=dropout_blocks)
        if not 0 <= dropout < 1:
            raise ValueError(f"{WHO}: dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.out_channels, self.image_size = in_channels, out_channels, image_size
        self.depth = depth
        widths = [min(width * 2**i, width * 8) for i in range(depth)]
        self.down = nn.ModuleList(
            self._down(in_channels if i == 0 else widths[i - 1], widths[i], i, norm)
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            self._up(widths, j, norm, dropout if j < dropout_blocks else 0.0) for j in range(depth)
        )
        init_normal(self)

    def _down(self, c_in: int, c_out: int, i: int, norm: str) -> nn.Sequential:
        """Encoder layer i: (LeakyReLU 0.2)-conv4x4 s2-(norm); halves the size."""
        outer, inner = i == 0, i == self.depth - 1
        layers: list[nn.Module] = [] if outer else [nn.LeakyReLU(0.2)]
        plain = outer or inner  # no norm on the first layer and the 1x1 bottleneck
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=plain or conv_bias(norm)))
        if not plain:
            layers.append(norm2d(WHO, norm, c_out))
        return nn.Sequential(*layers)

    def _up(self, widths: list[int], j: int, norm: str, dropout: float) -> nn.Sequential:
        """Decoder layer j (0: innermost): ReLU-transposed conv4x4 s2-norm-(dropout), or
        ReLU-transposed conv-tanh for the last; doubles the size."""
        i = self.depth - 1 - j  # the mirrored encoder layer
        c_in = widths[i] if j == 0 else 2 * widths[i]  # after j > 0: concatenated skip
        if i == 0:
            conv = nn.ConvTranspose2d(c_in, self.out_channels, 4, 2, 1)
            return nn.Sequential(nn.ReLU(), conv, nn.Tanh())
        conv = nn.ConvTranspose2d(c_in, widths[i - 1], 4, 2, 1, bias=conv_bias(norm))
        layers = [nn.ReLU(), conv, norm2d(WHO, norm, widths[i - 1])]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        s = self.image_size
        check_shape(x, (self.in_channels, s, s), WHO, "images")
        skips = []
        h = x
        for down in self.down:
            h = down(h)  # (B, C_i, S / 2^(i+1), S / 2^(i+1))
            skips.append(h)
        h = skips.pop()  # the bottleneck (B, 8·width, 1, 1)
        for up in self.up:
            h = up(h)
            if skips:  # skip connection: encoder layer i joins decoder layer n - i
                h = torch.cat([h, skips.pop()], dim=1)  # (B, 2·C_i, H, W)
        return h  # (B, out_channels, S, S)


__all__ = ["UNetGenerator", "unet_depth"]
