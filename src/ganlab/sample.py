"""``python -m ganlab.sample ckpt=PATH [n=64] [out=samples.png] [class=3] [interpolate=4]``:
images (or points) from a trained generator.

- ``out=*.png`` (or .jpg): a grid of ``n`` samples, ``columns`` per row; a conditional
  model gets one row per class (or only ``class``).
- ``out=<folder>`` (no image suffix): ``n`` PNG files, named with their class when
  conditional.
- ``interpolate=K``: a strip of K spherical walks of ``steps`` images between z pairs.
- ``out=*.csv``: points of a vector (toy) model, one per line.

The default z is the run's evaluation z, so ``n=64 out=grid.png`` redraws the run's last
grid; ``seed=S`` draws others. ``ema=false`` samples the raw generator instead of its EMA.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from ganlab.callbacks.samples import slerp
from ganlab.checkpoints import TrainedGenerator, load_generator
from ganlab.errors import UserError

DEFAULTS = {
    "ckpt": None, "n": "64", "out": "samples.png", "class": None, "interpolate": "0",
    "steps": "10", "columns": "8", "seed": None, "ema": "true", "device": "cpu",
}  # fmt: skip
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parse_args(argv: Sequence[str], defaults: dict[str, str | None]) -> dict[str, str | None]:
    """``key=value`` arguments (Hydra's style) over ``defaults``; unknown keys are errors."""
    args = dict(defaults)
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in defaults:
            raise UserError(
                f"unknown argument {arg!r}; use key=value with keys: {', '.join(defaults)}"
            )
        args[key] = value
    if not args.get("ckpt"):
        raise UserError("ckpt=PATH is required (a run's checkpoints/last.ckpt or best.ckpt)")
    return args


def int_arg(args: dict, key: str, minimum: int = 0) -> int:
    try:
        value = int(args[key])
    except (TypeError, ValueError):
        raise UserError(f"{key} must be an integer, got {args[key]!r}") from None
    if value < minimum:
        raise UserError(f"{key} must be >= {minimum}, got {value}")
    return value


def _labels(g: TrainedGenerator, n: int, cls: str | None) -> torch.Tensor | None:
    if cls is None:
        return None if not g.num_classes else torch.arange(n) % g.num_classes
    if not g.num_classes:
        raise UserError("class=... needs a class-conditional model; this one is unconditional")
    c = int(cls)
    if not 0 <= c < g.num_classes:
        raise UserError(f"class must be in [0, {g.num_classes}), got {c}")
    return torch.full((n,), c, dtype=torch.long)


def sample(args: dict[str, str | None]) -> Path:
    """Write what ``args`` ask for; returns the path written."""
    g = load_generator(args["ckpt"], ema=args["ema"] != "false", device=args["device"])
    n, out = int_arg(args, "n", 1), Path(args["out"])
    seed = None if args["seed"] is None else int_arg(args, "seed")
    if int_arg(args, "interpolate"):
        return _interpolation(g, args, out, seed)
    y = _labels(g, n, args["class"])
    columns = int_arg(args, "columns", 1)
    grid = out.suffix.lower() in IMAGE_SUFFIXES
    if grid and y is not None and args["class"] is None:  # a grid row per class
        columns = max(1, n // g.num_classes)
        y = torch.arange(g.num_classes).repeat_interleave(columns)[:n]
        n = len(y)
    z = g.z(n, seed)
    images = g(z, None if y is None else y.to(g.device)).float().cpu()
    return _write(images, out, columns, y)


def _interpolation(g: TrainedGenerator, args: dict, out: Path, seed: int | None) -> Path:
    rows, steps = int_arg(args, "interpolate", 1), int_arg(args, "steps", 2)
    z = g.z(2 * rows, seed)
    walk = slerp(z[0::2], z[1::2], torch.linspace(0, 1, steps, device=g.device)).flatten(0, 1)
    y = _labels(g, rows, args["class"])
    y = None if y is None else y.repeat_interleave(steps).to(g.device)
    return _write(g(walk, y).float().cpu(), out, steps, None)


def _write(images: torch.Tensor, out: Path, columns: int, y: torch.Tensor | None) -> Path:
    if images.dim() == 2:  # points of a vector model
        if out.suffix != ".csv":
            raise UserError(f"this model makes points, not images: use out=<file>.csv, not {out}")
        np.savetxt(out, images.numpy(), delimiter=",", fmt="%.6g")
        return out
    if out.suffix.lower() in IMAGE_SUFFIXES:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(images, out, nrow=columns, normalize=True, value_range=(-1, 1))
        return out
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, int(math.log10(len(images))) + 1)
    for i, image in enumerate(images):
        name = f"{i:0{width}d}" + ("" if y is None else f"_class{int(y[i])}")
        save_image(image, out / f"{name}.png", normalize=True, value_range=(-1, 1))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one ``error: ...`` line and exit 2 for a mistake."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv, DEFAULTS)
        path = sample(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
