"""The CycleGAN ResNet generator (Zhu et al. 2017, appendix 7.2; Johnson et al. 2016,
sec. 3 and supplementary)."""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.nets.layers import check_at_least, check_shape
from ganlab.nets.translate_layers import conv_bias, init_normal, norm2d

WHO = "CycleGANGenerator"


def default_blocks(image_size: int) -> int:
    """Residual blocks for ``image_size``: 9 at >= 256 px and 6 at 128 px (Zhu et al. 2017,
    appendix 7.2); 4 at 64 px and 3 below. Each block adds 16 px to the receptive field of
    the 4x-downsampled trunk, so 3 blocks already see 61 px, about twice a 32 px image; more
    only cost time on small images."""
    if image_size >= 256:
        return 9
    if image_size >= 128:
        return 6
    return 4 if image_size >= 64 else 3


class ResidualBlock(nn.Module):
    """R_k: reflection pad-conv3x3-norm-ReLU-reflection pad-conv3x3-norm, plus the input
    (Johnson et al. 2016; no ReLU after the sum, as in the CycleGAN code)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm2d(WHO, norm, channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm2d(WHO, norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CycleGANGenerator(nn.Module):
    """c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out: images (B, in_channels, S, S)
    -> (B, out_channels, S, S) in [-1, 1] (tanh). c7s1-k: reflection pad 3, 7x7 conv,
    norm, ReLU; dk: 3x3 stride-2 conv, norm, ReLU; uk: 3x3 stride-1/2 (transposed) conv,
    norm, ReLU; the last c7s1 has no norm and ends in tanh.

    Args:
        in_channels: channels of the input domain.
        out_channels: channels of the output domain.
        image_size: side S, a multiple of 4 and >= 8 (two halvings, then back).
        width: channels of c7s1 (64); the trunk has 4·width.
        n_blocks: residual blocks; None: ``default_blocks(image_size)`` (9 / 6 / 4 / 3).
        norm: ``instance`` (the paper), ``batch`` or ``none``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 256,
        width: int = 64,
        n_blocks: int | None = None,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        check_at_least(WHO, 1, in_channels=in_channels, out_channels=out_channels, width=width)
        if image_size < 8 or image_size % 4:
            raise ValueError(
                f"{WHO}: image_size must be a multiple of 4 and >= 8, got {image_size}"
            )
        n_blocks = default_blocks(image_size) if n_blocks is None else n_blocks
        check_at_least(WHO, 0, n_blocks=n_blocks)
        self.in_channels, self.out_channels, self.image_size = in_channels, out_channels, image_size
        self.n_blocks = n_blocks
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=bias),
            norm2d(WHO, norm, width),
            nn.ReLU(),
        ]
        for c in (width, 2 * width):  # d128, d256
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm2d(WHO, norm, 2 * c), nn.ReLU()]
        layers += [ResidualBlock(4 * width, norm) for _ in range(n_blocks)]
        for c in (4 * width, 2 * width):  # u128, u64
            up = nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias)
            layers += [up, norm2d(WHO, norm, c // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        s = self.image_size
        check_shape(x, (self.in_channels, s, s), WHO, "images")
        return self.net(x)  # (B, out_channels, S, S)


__all__ = ["CycleGANGenerator", "ResidualBlock", "default_blocks"]
