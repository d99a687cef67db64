"""``python -m ganlab.sample ckpt=PATH [n=64] [out=samples.png] [class=3] [interpolate=4]``:
images (or points) from a trained latent GAN.

- ``out=*.png`` (or .jpg): a grid of ``n`` samples, ``columns`` per row; a conditional
  model gets one row per class (or only ``class``).
- ``out=<folder>`` (no image suffix): ``n`` PNG files, named with their class when
  conditional.
- ``interpolate=K``: a strip of K spherical walks of ``steps`` images between z pairs.
- ``out=*.csv``: points of a vector (toy) model, one per line.
- ``arithmetic=A-B+C``: latent arithmetic (Radford et al. 2016, fig. 7) on groups of samples
  chosen by label (``label:7``), measured attribute (``thick``, ``thin``, ``right``,
  ``left``) or fixed-z index (``z:0,5``): each group, its mean image, the result and
  variations; ``direction=A-B`` (e.g. ``thick-thin``): ``interpolate`` walks along it.
  Options ``pool``, ``quantile``, ``noise``, ``span`` (see ``ganlab.arithmetic``).

The default z is the run's evaluation z, so ``n=64 out=grid.png`` redraws the run's last
grid pixel for pixel (a conditional run's too); ``seed=S`` draws others. ``ema=false``
samples the raw generator instead of its EMA.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganlab.arithmetic import figure
from ganlab.checkpoints import Trained, load_trained
from ganlab.errors import UserError
from ganlab.options import parse_options

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CKPT_HINT = "PATH"  # a run's checkpoints/last.ckpt or best.ckpt


@dataclass
class SampleOptions:
    ckpt: str = field(default="???", metadata={"required": CKPT_HINT})
    n: int = 64
    out: str = "samples.png"
    class_: int | None = None
    interpolate: int = 0
    steps: int = 10
    columns: int = 8
    seed: int | None = None
    ema: bool = True
    device: str = "cpu"
    # latent arithmetic (ganlab.arithmetic)
    arithmetic: str | None = None
    direction: str | None = None
    pool: int = 2000
    quantile: float = 0.1
    noise: float = 0.25
    span: float = 1.0


def _at_least(value: int, minimum: int, key: str) -> int:
    if value < minimum:
        raise UserError(f"{key} must be >= {minimum}, got {value}")
    return value


def _z(trained: Trained, n: int, seed: int | None) -> Tensor:
    """The run's evaluation z by default, or the stream of ``seed``."""
    family = trained.family
    if seed is None:
        return family.fixed_z(n, trained.device)
    return family.latent.draw(n, torch.Generator(device=trained.device).manual_seed(seed))


def _labels(trained: Trained, n: int, cls: int | None) -> Tensor | None:
    classes = trained.family.num_classes
    if cls is None:
        return None if not classes else torch.arange(n, device=trained.device) % classes
    if not classes:
        raise UserError("class=... needs a class-conditional model; this one is unconditional")
    if not 0 <= cls < classes:
        raise UserError(f"class must be in [0, {classes}), got {cls}")
    return torch.full((n,), cls, dtype=torch.long, device=trained.device)


def sample(opts: SampleOptions) -> Path:
    """Write what ``opts`` ask for; returns the path written."""
    trained = load_trained(opts.ckpt, ema=opts.ema, device=opts.device)
    if trained.family.latent is None:
        raise UserError(
            f"sample draws from a latent GAN; this checkpoint is {trained.family.name}, "
            "which has no latent: use python -m ganlab.translate"
        )
    n, out = _at_least(opts.n, 1, "n"), Path(opts.out)
    columns = _at_least(opts.columns, 1, "columns")
    if opts.arithmetic is not None or opts.direction is not None:
        images, per_row = _arithmetic(trained, opts)
        return _write(images, out, per_row, None)
    if _at_least(opts.interpolate, 0, "interpolate"):
        return _interpolation(trained, opts, out)
    family = trained.family
    if out.suffix.lower() in IMAGE_SUFFIXES and family.num_classes and opts.class_ is None:
        if opts.seed is None:  # the run's grid: a row per class, column j keeps its z
            images, columns = family.grid(n, columns)
            return _write(images.float().cpu(), out, columns, None)
    y = _labels(trained, n, opts.class_)
    images = family.generate(n, z=_z(trained, n, opts.seed), y=y).float().cpu()
    return _write(images, out, columns, None if y is None else y.cpu())


def _arithmetic(trained: Trained, opts: SampleOptions) -> tuple[Tensor, int]:
    images, columns = figure(trained, opts.arithmetic, opts.direction, pool=opts.pool,
                             quantile=opts.quantile, noise=opts.noise, span=opts.span,
                             rows=opts.interpolate or 4, steps=opts.steps, columns=opts.columns,
                             cls=opts.class_)  # fmt: skip
    return images.cpu(), columns


def _interpolation(trained: Trained, opts: SampleOptions, out: Path) -> Path:
    rows, steps = opts.interpolate, _at_least(opts.steps, 2, "steps")
    family = trained.family
    if opts.seed is None and opts.class_ is None:
        return _write(family.interpolation(rows, steps).float().cpu(), out, steps, None)
    z = _z(trained, 2 * rows, opts.seed)
    t = torch.linspace(0, 1, steps, device=trained.device)
    walk = trained.family.latent.interpolate(z[0::2], z[1::2], t).flatten(0, 1)
    y = _labels(trained, rows, opts.class_)
    y = None if y is None else y.repeat_interleave(steps)
    return _write(family.generate(len(walk), z=walk, y=y).float().cpu(), out, steps, None)


def _write(images: Tensor, out: Path, columns: int, y: Tensor | None) -> Path:
    from torchvision.utils import save_image

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
        opts = parse_options(SampleOptions, sys.argv[1:] if argv is None else argv,
                             aliases={"class": "class_"})  # fmt: skip
        path = sample(opts)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
