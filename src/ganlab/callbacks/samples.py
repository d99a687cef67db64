"""The pictures of image GANs (sample grids, interpolations, translations), saved and logged
on a schedule. What is drawn is the family's business: the callback saves what it gets."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
from torch import Tensor
from torchvision.utils import save_image

from ganlab.callbacks.needs import Needs
from ganlab.callbacks.schedule import Scheduled
from ganlab.loggers import log_images

log = logging.getLogger(__name__)


class SampleGrid(Scheduled):
    """Every ``every`` G steps and after the last one, save the family's pictures as
    ``<run dir>/samples/<name>_<step>.png`` and send them to W&B as ``samples/<name>``.

    For the latent GAN: a grid of ``n`` samples from a fixed z (the same z across the
    runs of a sweep with the same seed; a class-conditional model gets one row per class,
    and each column keeps its z) and a strip of ``interpolations`` spherical walks of
    ``interpolation_steps`` images between fixed z pairs. Translation families draw inputs,
    outputs and targets of a fixed validation set.

    Args:
        every: interval in generator steps.
        n: images in the grid.
        columns: images per row.
        interpolations: rows of the interpolation strip (0 = none).
        interpolation_steps: images per interpolation row.
    """

    needs = Needs(kinds=("images", "pairs", "domains"))
    interval_key = "sample_every"

    def __init__(
        self,
        every: int = 500,
        n: int = 64,
        columns: int = 8,
        interpolations: int = 4,
        interpolation_steps: int = 10,
    ) -> None:
        for key, value in (("n", n), ("columns", columns)):
            if value < 1:
                raise ValueError(f"SampleGrid: {key} must be >= 1, got {value}")
        if interpolations < 0 or interpolation_steps < 2:
            raise ValueError(
                "SampleGrid: interpolations must be >= 0 and interpolation_steps >= 2, got "
                f"{interpolations}, {interpolation_steps}"
            )
        super().__init__(every)
        self.n, self.columns = n, columns
        self.interpolations, self.interpolation_steps = interpolations, interpolation_steps

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # every rank holds the same nets: rank 0 draws alone
            return
        step = module.g_step
        pictures = module.family.pictures(
            trainer.datamodule.data,
            self.n,
            self.columns,
            self.interpolations,
            self.interpolation_steps,
        )
        out_dir = Path(trainer.default_root_dir) / "samples"
        out_dir.mkdir(parents=True, exist_ok=True)
        files = {
            f"samples/{name}": save_grid(images, out_dir / f"{name}_{step:07d}.png", columns)
            for name, (images, columns) in pictures.items()
        }
        log_images(trainer, files, step)


def save_grid(images: Tensor, path: Path, columns: int) -> Path:
    """Images in [-1, 1] as one PNG grid of ``columns`` per row, 2 px apart."""
    save_image(images.float().cpu(), path, nrow=columns, normalize=True, value_range=(-1, 1))
    return path
