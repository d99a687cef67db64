"""PNG/JPEG files of generated images, without torchvision.

``import torchvision`` costs about a second (its ops import ``torch._dynamo``); the
commands beside training only need ``torchvision.utils.save_image(images, path, nrow,
normalize=True, value_range=(-1, 1))``, which this module reproduces pixel for pixel
(padding 2, pad value 0, grayscale written as RGB, round half up).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

PADDING = 2


def grid(images: Tensor, columns: int) -> Tensor:
    """Images (B, C, H, W) or one image (C, H, W) in [-1, 1] -> a float (3 or C, H', W')
    grid in [0, 1], ``columns`` per row, as ``torchvision.utils.make_grid`` lays it out."""
    x = images.unsqueeze(0) if images.dim() == 3 else images  # (B, C, H, W)
    if x.size(1) == 1:  # single-channel images are written as RGB
        x = torch.cat((x, x, x), 1)
    x = x.clone().clamp_(-1.0, 1.0).sub_(-1.0).div_(2.0)  # value_range (-1, 1) -> [0, 1]
    if x.size(0) == 1:
        return x[0]
    count, channels, height, width = x.shape
    across = min(columns, count)
    down = math.ceil(count / across)
    h, w = height + PADDING, width + PADDING
    out = x.new_zeros((channels, h * down + PADDING, w * across + PADDING))
    for k in range(count):
        row, col = divmod(k, across)
        out[:, row * h + PADDING : (row + 1) * h, col * w + PADDING : (col + 1) * w] = x[k]
    return out


def save_images(images: Tensor, path: str | Path, columns: int = 8) -> None:
    """Write ``images`` (in [-1, 1]) to ``path`` as one picture, ``columns`` per row."""
    from PIL import Image

    g = grid(images, columns)
    pixels = g.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    Image.fromarray(pixels.numpy()).save(path)
