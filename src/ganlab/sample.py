"""``python -m ganlab.sample ckpt=PATH [n=64] [out=samples.png] [class=3] [interpolate=4]
[truncation=0.5]``:
images (or points) from a trained latent GAN.

- ``out=*.png`` (or .jpg): a grid of ``n`` samples, ``columns`` per row; a conditional
  model gets one row per class (or only ``class``).
- ``out=<folder>`` (no image suffix): ``n`` PNG files, named with their class when
  conditional.
- ``interpolate=K``: a strip of K spherical walks of ``steps`` images between z pairs.
- ``out=*.csv``: points of a vector (toy) model, one per line.
- ``truncation=PSI``: the truncation trick, fidelity for variety (``ganlab.latent``).
  ``truncation_mode=auto`` (default) is ``resample`` for Gaussian z: every coordinate
  with |z_i| > PSI is redrawn until inside (BigGAN, Brock et al. 2019; e.g. 0.5);
  ``mean`` (the default for uniform z) moves z toward the latent's mean, z̄ + PSI (z - z̄)
  (StyleGAN's truncation, in z space; 1 = none, e.g. 0.7). For grids, folders, points and
  interpolations; the truncated z are as reproducible as the untruncated ones.
- ``arithmetic=A-B+C``: latent arithmetic (Radford et al. 2016, fig. 7) on groups of samples
  chosen by label (``label:7``), measured attribute (``thick``, ``thin``, ``right``,
  ``left``) or fixed-z index (``z:0,5``): each group, its mean image, the result and
  variations; ``direction=A-B`` (e.g. ``thick-thin``): ``interpolate`` walks along it.
  Options ``pool``, ``quantile``, ``noise``, ``span`` (see ``ganlab.arithmetic``).

Any other suffix, a folder that is a file, a grid of more than 4,096 images or more than
100,000 samples are refused in one line before anything is drawn; ``device`` must exist.

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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganlab.arithmetic import figure
from ganlab.checkpoints import Trained, load_trained
from ganlab.errors import UserError, run_command
from ganlab.families.protocols import CanSample
from ganlab.latent import Truncation
from ganlab.options import at_most, check_device, parse_options
from ganlab.pictures import save_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CKPT_HINT = "PATH"  # a run's checkpoints/last.ckpt or best.ckpt
MAX_GRID = 4096  # images in one grid picture (64 x 64)
MAX_SAMPLES = 100_000  # samples written to a folder or a CSV file
CHUNK = 1024  # samples generated at once


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
    # the truncation trick (ganlab.latent.Truncation)
    truncation: float | None = None
    truncation_mode: str = "auto"


def _at_least(value: int, minimum: int, key: str) -> int:
    if value < minimum:
        raise UserError(f"{key} must be >= {minimum}, got {value}")
    return value


def _z(trained: Trained, n: int, seed: int | None, truncation: Truncation | None) -> Tensor:
    """The run's evaluation z by default, or the stream of ``seed``; truncated when asked."""
    family: CanSample = trained.family
    if seed is None:
        return family.fixed_z(n, trained.device, truncation)
    generator = torch.Generator(device=trained.device).manual_seed(seed)
    return family.latent.draw(n, generator, truncation)


def truncation(opts: Any) -> Truncation | None:
    """The truncation that a command's options (``truncation``, ``truncation_mode``: those of
    sample and evaluate) ask for, or None; ``UserError`` for a bad value or mode."""
    if opts.truncation is None:
        if opts.truncation_mode != "auto":
            raise UserError(
                f"truncation_mode={opts.truncation_mode} needs truncation=PSI (e.g. 0.5)"
            )
        return None
    try:
        return Truncation(opts.truncation, opts.truncation_mode)
    except ValueError as err:
        raise UserError(str(err)) from None


def truncation_fits(trained: Trained, trunc: Truncation | None) -> str | None:
    """The mode ``trunc`` takes for the checkpoint's latent (None: no truncation);
    ``UserError`` when that latent cannot take it."""
    if trunc is None:
        return None
    try:
        return trained.family.latent.truncation_mode(trunc)
    except ValueError as err:
        raise UserError(str(err)) from None


def _labels(trained: Trained, n: int, cls: int | None) -> Tensor | None:
    classes = trained.family.num_classes
    if cls is None:
        return None if not classes else torch.arange(n, device=trained.device) % classes
    if not classes:
        raise UserError("class=... needs a class-conditional model; this one is unconditional")
    if not 0 <= cls < classes:
        raise UserError(f"class must be in [0, {classes}), got {cls}")
    return torch.full((n,), cls, dtype=torch.long, device=trained.device)


def output_kind(out: Path) -> str:
    """``grid`` (an image file), ``csv`` or ``folder`` (an existing folder, or a name without
    a suffix); ``UserError`` for anything else, before any work is done."""
    suffix = out.suffix.lower()
    if out.is_dir():
        return "folder"
    if out.exists() and not out.is_file():
        raise UserError(f"out={out} exists and is neither a file nor a folder")
    if suffix in IMAGE_SUFFIXES or suffix == ".csv":
        return "grid" if suffix in IMAGE_SUFFIXES else "csv"
    if suffix or out.exists():
        what = "is an existing file" if out.exists() else f"has the suffix {suffix}"
        raise UserError(
            f"out={out} {what}: write a grid to a .png or .jpg file, points to a .csv file, "
            "or one PNG per sample to a folder (a new name without a suffix)"
        )
    return "folder"


def _check(opts: SampleOptions) -> tuple[Path, str]:
    """The output and its kind, with every option checked before the checkpoint is read."""
    out = Path(opts.out)
    kind = output_kind(out)
    check_device(opts.device)
    n = _at_least(opts.n, 1, "n")
    truncation(opts)
    _at_least(opts.columns, 1, "columns")
    if _at_least(opts.interpolate, 0, "interpolate"):
        steps = _at_least(opts.steps, 2, "steps")
        at_most(opts.interpolate * steps, MAX_GRID, "interpolate x steps", "images in a grid")
    elif kind == "grid":
        at_most(n, MAX_GRID, "n", "images in one grid; write a folder for more")
    else:
        at_most(n, MAX_SAMPLES, "n", "samples written at once")
    return out, kind


def sample(opts: SampleOptions) -> Path:
    """Write what ``opts`` ask for; returns the path written."""
    out, kind = _check(opts)
    trained = load_trained(opts.ckpt, ema=opts.ema, device=opts.device)
    if not isinstance(trained.family, CanSample):  # a family samples by having the methods
        raise UserError(
            f"sample draws from a latent GAN; this checkpoint is {trained.family.name}, "
            "which has no latent: use python -m ganlab.translate"
        )
    points = trained.spec.kind == "points"
    if points != (kind == "csv"):
        made = "points, not images: use out=<file>.csv" if points else "images: use out=<file>.png"
        raise UserError(f"this model makes {made} (or a folder), not out={out}")
    n, columns = opts.n, opts.columns
    trunc = truncation(opts)
    truncation_fits(trained, trunc)
    if opts.arithmetic is not None or opts.direction is not None:
        if trunc is not None:
            raise UserError("truncation= applies to samples and interpolations, not arithmetic=")
        if kind != "grid":
            raise UserError(
                f"arithmetic= and direction= draw one figure: use out=<file>.png, not out={out}"
            )
        images, per_row = _arithmetic(trained, opts)
        return _write(images, out, per_row, None)
    if opts.interpolate:
        return _interpolation(trained, opts, out, trunc)
    family: CanSample = trained.family
    if kind == "grid" and family.num_classes and opts.class_ is None and opts.seed is None:
        images, columns = family.grid(n, columns, trunc)  # the run's grid: a row per class
        return _write(images.float().cpu(), out, columns, None)
    y = _labels(trained, n, opts.class_)
    z = _z(trained, n, opts.seed, trunc)
    for start in range(0, n, CHUNK):  # a folder of 100,000 samples: a chunk at a time
        part = slice(start, start + CHUNK)
        images = family.generate(len(z[part]), z=z[part], y=None if y is None else y[part])
        labels = None if y is None else y[part].cpu()
        _write(images.float().cpu(), out, columns, labels, start=start, total=n)
    return out


def _arithmetic(trained: Trained, opts: SampleOptions) -> tuple[Tensor, int]:
    images, columns = figure(trained, opts.arithmetic, opts.direction, pool=opts.pool,
                             quantile=opts.quantile, noise=opts.noise, span=opts.span,
                             rows=opts.interpolate or 4, steps=opts.steps, columns=opts.columns,
                             cls=opts.class_)  # fmt: skip
    return images.cpu(), columns


def _interpolation(
    trained: Trained, opts: SampleOptions, out: Path, trunc: Truncation | None
) -> Path:
    rows, steps = opts.interpolate, opts.steps
    family: CanSample = trained.family
    if opts.seed is None and opts.class_ is None:
        return _write(family.interpolation(rows, steps, trunc).float().cpu(), out, steps, None)
    z = _z(trained, 2 * rows, opts.seed, trunc)
    t = torch.linspace(0, 1, steps, device=trained.device)
    walk = trained.family.latent.interpolate(z[0::2], z[1::2], t).flatten(0, 1)
    y = _labels(trained, rows, opts.class_)
    y = None if y is None else y.repeat_interleave(steps)
    return _write(family.generate(len(walk), z=walk, y=y).float().cpu(), out, steps, None)


def _write(
    images: Tensor, out: Path, columns: int, y: Tensor | None, start: int = 0, total: int = 0
) -> Path:
    """Write ``images`` (samples ``start``.. of ``total``) as ``out``'s kind says."""
    if images.dim() == 2:  # points of a vector model, appended chunk by chunk
        with open(out, "w" if start == 0 else "a") as f:
            np.savetxt(f, images.numpy(), delimiter=",", fmt="%.6g")
        return out
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        save_images(images, out, columns)
        return out
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, int(math.log10(max(total, len(images), 1))) + 1)
    for i, image in enumerate(images, start=start):
        name = f"{i:0{width}d}" + ("" if y is None else f"_class{int(y[i - start])}")
        save_images(image, out / f"{name}.png")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one ``error: ...`` line and exit 2 for a mistake."""
    argv = sys.argv[1:] if argv is None else argv
    aliases = {"class": "class_"}
    opts = run_command(lambda: parse_options(SampleOptions, argv, aliases=aliases, usage=__doc__))
    print(f"wrote {run_command(lambda: sample(opts), opts.out)}")


if __name__ == "__main__":
    main()
