"""What the image-translation families (Pix2Pix, CycleGAN) share: the evaluation record of a
translation direction, and grids of images with different channel counts side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class Translation:
    """One direction of a translation family, on a fixed validation set, for the metrics.

    Args:
        name: the direction's name in logged keys ("" -> ``val/<metric>``, "ab" ->
            ``val/ab/<metric>``).
        source: the inputs (N, C_in, H, W) in [-1, 1].
        output: the translations (N, C_out, H, W).
        target: the paired ground truth (Pix2Pix), or None.
        labels: each source item's class (evaluation only), or None.
        domain: the image data module of the output domain: its real images for FID and its
            domain classifier for label preservation.
        cycle: the source translated there and back (CycleGAN), or None.
    """

    name: str
    source: Tensor
    output: Tensor
    target: Tensor | None
    labels: Tensor | None
    domain: Any
    cycle: Tensor | None = None


def rgb(images: Tensor, channels: int) -> Tensor:
    """Images with ``channels`` channels (a gray image is repeated), for a common grid."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] == 1 else images


def side_by_side(columns: list[Tensor]) -> tuple[Tensor, int]:
    """Rows of (column 0, column 1, ...) images: (N x len(columns), C, H, W) and the images
    per row, for ``save_image(..., nrow=len(columns))``."""
    channels = max(c.shape[1] for c in columns)
    stacked = torch.stack([rgb(c, channels) for c in columns], dim=1)  # (N, K, C, H, W)
    return stacked.flatten(0, 1), len(columns)


@torch.no_grad()
def apply(net: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """``net(x)`` in eval mode, without gradients, in batches, on the net's device."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = torch.cat([net(chunk.to(device)) for chunk in x.split(batch_size)])
    net.train(was_training)
    return out
