"""Paired translation tasks derived from an image set: the target is the image, the input a
deterministic degradation of it (Isola et al. 2017, sec. 4: edges -> photo, colorization,
...). Each task maps uint8 images (N, C, H, W) to uint8 inputs (N, C_in, H, W), so the pairs
are computed once, on the CPU, and are the same on every device.

Adding a task = one class here (``in_channels``, ``check``, ``__call__``) + one config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.data.sampling import to_float
from ganlab.errors import UserError

# ITU-R BT.601 luma, as PIL's convert("L") and the colorization literature (Zhang et al. 2016
# use L of Lab; luma keeps the task within 8-bit images)
LUMA = (0.299, 0.587, 0.114)


def luma(images: Tensor) -> Tensor:
    """uint8 or float images (N, C, H, W), C = 1 or 3 -> float luma (N, 1, H, W), same scale."""
    x = images.float()
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)  # (N, 3, H, W) -> (N, 1, H, W)


def to_uint8(x: Tensor) -> Tensor:
    """Float images in [0, 255] -> uint8, rounded to nearest."""
    return x.round().clamp_(0, 255).to(torch.uint8)


class PairTask:
    """A task: the input of a pair from its target. Defaults: same channels, any base."""

    name = "task"

    def in_channels(self, channels: int) -> int:
        """Channels of the input for targets of ``channels``."""
        return channels

    def check(self, base_name: str, channels: int, image_size: int) -> None:
        """Raise ``UserError`` (one line) when the base set cannot serve this task."""

    def __call__(self, images: Tensor) -> Tensor:
        raise NotImplementedError


class Edges(PairTask):
    """edges -> image: a binary edge map (255 on edges, 0 elsewhere, one channel) where the
    Sobel gradient magnitude of the luma, scaled to [0, 1] per unit step, exceeds
    ``threshold`` (a stand-in for the HED edges of pix2pix's edges2shoes, Isola et al. 2017,
    sec. 4; Sobel as in Canny's first stage, without thinning)."""

    name = "edges"

    def __init__(self, threshold: float = 0.2) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"edges: threshold must be in (0, 1), got {threshold}")
        self.threshold = threshold

    def in_channels(self, channels: int) -> int:
        return 1

    def __call__(self, images: Tensor) -> Tensor:
        gray = luma(images) / 255  # (N, 1, H, W) in [0, 1]
        kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 4
        kernels = torch.stack([kx, kx.T]).unsqueeze(1).to(gray)  # (2, 1, 3, 3): d/dx, d/dy
        grad = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
        edges = grad.square().sum(dim=1, keepdim=True).sqrt() > self.threshold
        return edges.to(torch.uint8) * 255


def downsample(images: Tensor, factor: int) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, H/factor, W/factor): area (box) average, rounded
    to 8 bits as a stored low-resolution image would be."""
    return to_uint8(F.avg_pool2d(images.float(), factor))


def upsample_bicubic(low: Tensor, size: int) -> Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, size, size): bicubic interpolation (Keys 1981,
    a = -0.75 as torch and OpenCV), clamped and rounded to 8 bits."""
    return to_uint8(F.interpolate(low.float(), size=(size, size), mode="bicubic"))


def bicubic_baseline(images: Tensor, factor: int = 4) -> Tensor:
    """The bicubic super-resolution baseline: images in [-1, 1] (N, C, S, S) -> area
    downsampled ``factor`` times and bicubic-upsampled back, in [-1, 1]. Equal, bit for bit,
    to the ``input`` the ``super_resolution`` data serves for the same targets, so a
    generator's PSNR/SSIM can be compared with bicubic's on the same pairs."""
    u8 = to_uint8((images.float() + 1) * 127.5)  # exact for images that came from uint8
    return to_float(upsample_bicubic(downsample(u8, factor), images.shape[-1]))


class SuperResolution(PairTask):
    """x``factor`` super-resolution: the input is the target area-downsampled ``factor`` times
    and bicubic-upsampled back to the full size (SRCNN's protocol, Dong et al. 2016), so the
    generator maps images to images of the same size, as Pix2Pix's U-Net does; the input
    itself is the bicubic baseline (``bicubic_baseline``)."""

    name = "super_resolution"

    def __init__(self, factor: int = 4) -> None:
        if factor < 2:
            raise ValueError(f"super_resolution: factor must be >= 2, got {factor}")
        self.factor = factor

    def check(self, base_name: str, channels: int, image_size: int) -> None:
        if image_size % self.factor:
            raise UserError(
                f"super_resolution x{self.factor} needs an image_size divisible by "
                f"{self.factor}, got {image_size}"
            )

    def __call__(self, images: Tensor) -> Tensor:
        return upsample_bicubic(downsample(images, self.factor), images.shape[-1])


class Inpainting(PairTask):
    """Fill a masked centre square (Pathak et al. 2016, context encoders: the centre half of
    the side): the input is the target with the square set to ``fill`` (128: mid-grey, ~0
    in [-1, 1]). The mask is fixed, so the generator knows where the hole is."""

    name = "inpainting"

    def __init__(self, fraction: float = 0.5, fill: int = 128) -> None:
        if not 0 < fraction < 1:
            raise ValueError(f"inpainting: fraction must be in (0, 1), got {fraction}")
        if not 0 <= fill <= 255:
            raise ValueError(f"inpainting: fill must be a uint8 value in [0, 255], got {fill}")
        self.fraction, self.fill = fraction, fill

    def mask(self, image_size: int) -> Tensor:
        """bool (image_size, image_size): True inside the masked centre square."""
        side = max(1, round(self.fraction * image_size))
        start = (image_size - side) // 2
        mask = torch.zeros(image_size, image_size, dtype=torch.bool)
        mask[start : start + side, start : start + side] = True
        return mask

    def __call__(self, images: Tensor) -> Tensor:
        return images.masked_fill(self.mask(images.shape[-1]).to(images.device), self.fill)


class Colorization(PairTask):
    """grayscale -> RGB (Isola et al. 2017, sec. 4.6; Zhang et al. 2016): the input is the
    BT.601 luma of an RGB target, one channel."""

    name = "colorization"

    def in_channels(self, channels: int) -> int:
        return 1

    def check(self, base_name: str, channels: int, image_size: int) -> None:
        if channels != 3:
            raise UserError(
                f"colorization needs an RGB base set, but {base_name} has {channels} "
                "channel(s): use an RGB set as data.base (stacked_digits, cifar10, a folder)"
            )

    def __call__(self, images: Tensor) -> Tensor:
        return to_uint8(luma(images))


__all__ = [
    "Colorization",
    "Edges",
    "Inpainting",
    "PairTask",
    "SuperResolution",
    "bicubic_baseline",
    "downsample",
    "luma",
    "upsample_bicubic",
]
