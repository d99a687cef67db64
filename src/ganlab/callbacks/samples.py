"""Sample grids and latent interpolations of image GANs, saved and logged on a schedule."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor
from torchvision.utils import save_image

from ganlab.module import GANModule

log = logging.getLogger(__name__)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (N, D) at fractions ``t``
    (T,): (N, T, D). Gaussian z concentrate near a sphere, where linear midpoints are
    atypically short (White 2016, "Sampling generative networks")."""
    a_unit = a / a.norm(dim=1, keepdim=True)
    b_unit = b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(dim=1).clamp(-1.0, 1.0))[:, None, None]  # (N,1,1)
    t = t[None, :, None]  # (1, T, 1)
    so = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / (
        so.clamp_min(1e-7)
    )
    return torch.where(so.abs() < 1e-6, linear, spherical)  # (N, T, D)


def class_rows(num_classes: int, rows: int) -> list[int]:
    """The classes shown, one per row: all of them up to ``rows``, else evenly spaced."""
    if num_classes <= rows:
        return list(range(num_classes))
    return [round(i * (num_classes - 1) / (rows - 1)) for i in range(rows)]


class SampleGrid(pl.Callback):
    """Every ``every`` G steps and after the last one, save a grid of samples from a fixed
    z (the same z across the runs of a sweep with the same seed) and a latent interpolation
    strip under ``<run dir>/samples``, and send both to W&B.

    A class-conditional model gets one row per class (the columns share their z, so a
    column shows one style across classes). The strip holds ``interpolations`` rows, each
    a spherical walk over ``interpolation_steps`` images between two fixed z.

    Args:
        every: interval in generator steps.
        n: images in the grid (unconditional; a conditional grid has ``columns`` images for
            each class, of max(10, n / columns) classes).
        columns: images per row.
        interpolations: rows of the interpolation strip (0 = none).
        interpolation_steps: images per interpolation row.
    """

    def __init__(
        self,
        every: int = 500,
        n: int = 64,
        columns: int = 8,
        interpolations: int = 4,
        interpolation_steps: int = 10,
    ) -> None:
        for key, value in (("every", every), ("n", n), ("columns", columns)):
            if value < 1:
                raise ValueError(f"SampleGrid: {key} must be >= 1, got {value}")
        if interpolations < 0 or interpolation_steps < 2:
            raise ValueError(
                "SampleGrid: interpolations must be >= 0 and interpolation_steps >= 2, got "
                f"{interpolations}, {interpolation_steps}"
            )
        self.every, self.n, self.columns = every, n, columns
        self.interpolations, self.interpolation_steps = interpolations, interpolation_steps
        self._last_step: int | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, module: GANModule, *args) -> None:
        if module.status == "running" and _is_image(trainer):
            if module.g_step % self.every == 0 or trainer.is_last_batch:
                self.save(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: GANModule) -> None:
        if module.status == "running" and _is_image(trainer) and self._last_step != module.g_step:
            self.save(trainer, module)

    def grid(self, module: GANModule) -> tuple[Tensor, int]:
        """The grid's images (N, C, H, W) in [-1, 1] and its images per row."""
        if not module.num_classes:
            return module.generate(self.n), self.columns
        # every class when there are up to 10 (or n / columns), else that many, evenly spaced
        classes = class_rows(module.num_classes, rows=max(10, self.n // self.columns))
        z = module.fixed_z(self.columns).repeat(len(classes), 1)  # column j: the same z
        y = torch.tensor(classes, device=module.device).repeat_interleave(self.columns)
        return module.generate(len(z), z=z, y=y), self.columns

    def interpolation(self, module: GANModule) -> Tensor:
        """(rows x steps, C, H, W): slerp between the fixed z pairs (2i, 2i + 1)."""
        z = module.fixed_z(2 * self.interpolations)
        t = torch.linspace(0, 1, self.interpolation_steps, device=module.device)
        walk = slerp(z[0::2], z[1::2], t).flatten(0, 1)  # (rows * steps, latent_dim)
        y = None
        if module.num_classes:  # row i keeps class i
            rows = torch.arange(self.interpolations, device=module.device) % module.num_classes
            y = rows.repeat_interleave(self.interpolation_steps)
        return module.generate(len(walk), z=walk, y=y)

    def save(self, trainer: pl.Trainer, module: GANModule) -> None:
        step = self._last_step = module.g_step
        if not trainer.is_global_zero:  # every rank holds the same G: rank 0 draws alone
            return
        out_dir = Path(trainer.default_root_dir) / "samples"
        out_dir.mkdir(parents=True, exist_ok=True)
        images, columns = self.grid(module)
        files = {"samples/grid": _save(images, out_dir / f"grid_{step:07d}.png", columns)}
        if self.interpolations:
            strip = self.interpolation(module)
            path = out_dir / f"interpolation_{step:07d}.png"
            files["samples/interpolation"] = _save(strip, path, self.interpolation_steps)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for key, path in files.items():
                    logger.log_image(key, [str(path)], step=step)


def _save(images: Tensor, path: Path, columns: int) -> Path:
    # images in [-1, 1] -> [0, 1]; 2 px of padding between images
    save_image(images.float().cpu(), path, nrow=columns, normalize=True, value_range=(-1, 1))
    return path


def _is_image(trainer: pl.Trainer) -> bool:
    return hasattr(trainer.datamodule, "image_shape")
