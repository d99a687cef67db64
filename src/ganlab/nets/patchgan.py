"""The PatchGAN discriminator of Pix2Pix and CycleGAN (Isola et al. 2017, sec. 3.2.2 and
appendix 6.1.2; Zhu et al. 2017, sec. 4; Li & Wand 2016)."""

from __future__ import annotations

import logging

from torch import Tensor, nn

from ganlab.nets.layers import check_at_least, check_shape
from ganlab.nets.translate_layers import conv_bias, init_normal, norm2d, receptive_field

WHO = "PatchGANDiscriminator"
log = logging.getLogger(__name__)


def patchgan_receptive_field(n_layers: int) -> int:
    """The patch one output unit of an ``n_layers`` PatchGAN judges: 70 for 3 (the paper's
    70x70 PatchGAN), 34 for 2, 16 for 1, 142 for 4, 286 for 5 (its ImageGAN at 256 px).

    ``n_layers`` stride-2 4x4 convs, then two stride-1 4x4 convs:
    1 + 3·(2^0 + ... + 2^(n-1)) + 3·2^n + 3·2^n = 9·2^n - 2."""
    check_at_least(WHO, 1, n_layers=n_layers)
    return 9 * 2**n_layers - 2


def patchgan_output_size(image_size: int, n_layers: int) -> int:
    """Side of the output map for ``image_size`` inputs: n halvings, then two 4x4 stride-1
    convs with padding 1 (each removes one pixel)."""
    size = image_size
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 2


class PatchGANDiscriminator(nn.Module):
    """PatchGAN: images (B, in_channels, S, S) -> raw scores (B, 1, P, P), one per patch of
    ``receptive_field`` pixels (no sigmoid: a loss object works on raw outputs).

    C64-C128-C256-C512 for ``n_layers=3``: ``n_layers`` 4x4 stride-2 convs (widths double
    from ``width``, at most 8·width), one 4x4 stride-1 conv, then a 4x4 stride-1 conv to one
    channel; LeakyReLU 0.2; no norm on the first layer (appendix 6.1.2).

    For Pix2Pix D sees the conditioning input and the output side by side,
    ``cat([input, output], dim=1)``, so ``in_channels = C_in + C_out``; for CycleGAN it sees
    one image, ``in_channels = C``.

    Args:
        in_channels: channels of what D sees.
        image_size: side S of the inputs; the output map must be at least 1x1 (n_layers=3
            needs S >= 24).
        width: channels of the first layer (64).
        n_layers: stride-2 layers: 3 is the 70x70 PatchGAN, 1 a 16x16 one.
        norm: ``batch`` (Pix2Pix), ``instance`` (CycleGAN) or ``none``.
    """

    def __init__(
        self,
        in_channels: int = 6,
        image_size: int = 256,
        width: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_at_least(WHO, 1, in_channels=in_channels, width=width, n_layers=n_layers)
        out = patchgan_output_size(image_size, n_layers)
        if out < 1:
            smallest = next(s for s in range(1, 4096) if patchgan_output_size(s, n_layers) >= 1)
            raise ValueError(
                f"{WHO}: n_layers={n_layers} needs image_size >= {smallest}, got {image_size}"
            )
        self.in_channels, self.image_size, self.n_layers = in_channels, image_size, n_layers
        self.output_shape = (1, out, out)
        widths = [min(width * 2**i, width * 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            conv = nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=conv_bias(norm))
            layers += [conv, norm2d(WHO, norm, widths[i]), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_normal(self)
        log.info(
            "PatchGAN D: each score judges a %dx%d px patch (receptive field), a %dx%d map "
            "of scores at %d px",
            self.receptive_field, self.receptive_field, out, out, image_size,
        )  # fmt: skip

    @property
    def receptive_field(self) -> int:
        """The patch side one output unit sees, computed from this net's convs (70 for
        n_layers=3); equals ``patchgan_receptive_field(n_layers)``."""
        return receptive_field(m for m in self.net if isinstance(m, nn.Conv2d))

    def forward(self, x: Tensor) -> Tensor:
        s = self.image_size
        check_shape(x, (self.in_channels, s, s), WHO, "images")
        return self.net(x)  # (B, 1, P, P)


__all__ = ["PatchGANDiscriminator", "patchgan_output_size", "patchgan_receptive_field"]
