"""PacGAN's packed discriminator (Lin et al. 2018): D judges m samples at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn


def pack(x: Tensor, m: int) -> Tensor:
    """Groups of ``m`` consecutive samples concatenated on features (points: (B, D) ->
    (B/m, m·D)) or channels (images: (B, C, H, W) -> (B/m, m·C, H, W)), as PacGAN's code
    concatenates its m generator outputs (``tensor.concatenate(x_tildes, axis=1)``)."""
    if x.dim() < 2 or x.shape[0] % m:
        raise ValueError(
            f"PacGAN packs groups of m={m} samples: got a batch of shape {tuple(x.shape)}, "
            f"whose size is not a multiple of {m}"
        )
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])  # (B/m, m·C, ...)


class Packed(nn.Module):
    """A discriminator of packs (Lin et al. 2018, sec. 3): ``net`` reads m samples
    concatenated (its input width or channels scaled by m) and gives one score per pack.

    ``forward(x)`` packs a batch (B, ...) -> scores (B/m, 1); ``forward(x, packed=True)``
    scores inputs already packed (B/m, m·...), so that a gradient penalty differentiates
    with respect to the packs D sees.
    """

    def __init__(self, net: nn.Module, pack: int) -> None:
        super().__init__()
        if pack < 2:
            raise ValueError(f"Packed: pack must be >= 2 samples per pack, got {pack}")
        self.net, self.pack = net, pack

    def forward(self, x: Tensor, packed: bool = False) -> Tensor:
        return self.net(x if packed else pack(x, self.pack))  # (B/m, 1)

    def extra_repr(self) -> str:
        return f"pack={self.pack}"


def packed(
    make: Callable[..., nn.Module], m: int, shape: tuple[int, ...], kwargs: dict[str, Any]
) -> nn.Module:
    """``make(**kwargs)``, or for m > 1 PacGAN's D: built for m samples concatenated (m x the
    features of a point of ``shape`` (D,), m x the channels of an image (C, H, W)) and
    wrapped in ``Packed``."""
    if m == 1:
        return make(**kwargs)
    key = "channels" if len(shape) == 3 else "in_dim"  # (B/m, m·C, H, W) or (B/m, m·D)
    return Packed(make(**{**kwargs, key: m * shape[0]}), m)
