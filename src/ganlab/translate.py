"""``python -m ganlab.translate ckpt=PATH input=FOLDER [out=translated] [direction=ab]``:
translate a folder of images with a trained Pix2Pix or CycleGAN.

Every image under ``input`` (searched recursively; any size and mode) is resized on its
shorter side and centre-cropped to the model's size and channels, translated, and written as
``out/<its relative path>.png``. ``direction=ba`` runs CycleGAN's B -> A generator.
``ema=false`` uses the raw generator instead of its EMA (when the run kept one).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganlab.checkpoints import load_trained
from ganlab.errors import UserError, run_command
from ganlab.families.protocols import CanTranslate
from ganlab.options import check_device, parse_options
from ganlab.pictures import save_images
from ganlab.sample import CKPT_HINT


@dataclass
class TranslateOptions:
    ckpt: str = field(default="???", metadata={"required": CKPT_HINT})
    input: str = field(default="???", metadata={"required": "FOLDER"})
    out: str = "translated"
    direction: str = "ab"
    batch_size: int = 64
    ema: bool = True
    device: str = "cpu"


def translate(opts: TranslateOptions) -> list[Path]:
    """Translate the images of ``opts.input``; returns the files written."""
    from ganlab.data.decode import find_images, load_image
    from ganlab.data.sampling import to_float

    check_device(opts.device)
    if opts.batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {opts.batch_size}")
    if Path(opts.out).exists() and not Path(opts.out).is_dir():
        raise UserError(f"out={opts.out} is an existing file: name a folder to write into")
    root, out = Path(opts.input).expanduser(), Path(opts.out)
    files = find_images(root, "input")  # before the checkpoint is read
    trained = load_trained(opts.ckpt, ema=opts.ema, device=opts.device)
    family = trained.family
    if not isinstance(family, CanTranslate):
        raise UserError(
            f"translate needs a translation model (pix2pix, cyclegan); this checkpoint is "
            f"{family.name}: use python -m ganlab.sample"
        )
    if opts.direction not in family.sources:
        raise UserError(
            f"direction={opts.direction}: {family.name} translates {'|'.join(family.sources)}"
        )
    channels, size, _ = trained.spec.shapes[family.sources[opts.direction]]
    written = []
    for start in range(0, len(files), max(1, opts.batch_size)):
        chunk = files[start : start + opts.batch_size]
        images = torch.stack([_load(p, channels, size, load_image) for p in chunk])  # uint8
        outputs = family.translate(to_float(images), opts.direction).float().cpu()
        for path, image in zip(chunk, outputs, strict=True):
            target = (out / path.relative_to(root)).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            save_images(image, target)
            written.append(target)
    return written


def _load(path: Path, channels: int, size: int, load_image: Any) -> torch.Tensor:
    try:
        return load_image(str(path), channels, size)
    except Exception as err:  # PIL raises many types for broken files
        raise UserError(f"cannot decode image {path}: {err}") from None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one ``error: ...`` line and exit 2 for a mistake."""
    argv = sys.argv[1:] if argv is None else argv
    opts = run_command(lambda: parse_options(TranslateOptions, argv, usage=__doc__))
    written = run_command(lambda: translate(opts), opts.out)
    print(f"wrote {len(written)} images to {opts.out}")


if __name__ == "__main__":
    main()
