"""Finding and decoding image files, without Lightning: shared by the folder data sets and
``python -m ganlab.translate`` (which must start quickly, see ``benchmarks/startup.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganlab.errors import UserError

SUFFIXES = frozenset(".png .jpg .jpeg .bmp .gif .webp .tif .tiff .ppm .pgm .pbm .tga".split())


def find_images(path: Path, option: str = "data.path") -> list[Path]:
    """Image files under ``path`` (recursively), sorted; ``UserError`` naming ``option``
    (the option that gave ``path``) if there are none."""
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise UserError(f"{option}={path} {what}: name a folder of images")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise UserError(
            f"{option}={path}: no image files there (looked for "
            f"{', '.join(sorted(SUFFIXES))}, recursively)"
        )
    return files


def unreadable(files: list[Path]) -> list[Path]:
    """The files PIL cannot open and verify (headers, PNG checksums; a truncated JPEG passes
    and fails later, when a worker decodes it)."""
    bad = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:  # PIL raises many types for broken files
            bad.append(path)
    return bad


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """``image`` in mode "L" (channels 1) or "RGB" (channels 3); transparency on white."""
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    if image.mode == "I":  # 16-bit: keep the high byte rather than clipping at 255
        image = image.point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("L" if channels == 1 else "RGB")


def resize_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize so the shorter side is ``size`` (bicubic, antialiased), then centre-crop."""
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_image(path: str, channels: int, size: int) -> Tensor:
    """The image at ``path`` as uint8 (channels, size, size)."""
    with Image.open(path) as image:
        array = np.array(resize_crop(to_channels(image, channels), size))
    tensor = torch.from_numpy(array)
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
