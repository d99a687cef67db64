"""Scores generated samples of toy data on a schedule in G steps, and plots them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from ganlab.callbacks.needs import SAMPLED_POINTS
from ganlab.callbacks.schedule import Scheduled
from ganlab.collectives import share_slice
from ganlab.families.protocols import CanCritic, CanSample
from ganlab.loggers import log_images, log_now

log = logging.getLogger(__name__)


class ToyEvaluator(Scheduled):
    """Every ``every`` G steps and after the last one: draw ``n_samples`` from G, score
    them against the data distribution (``val/modes``, ``val/hq``, ``val/rkl``, ...),
    and save a figure of them under ``<run dir>/plots`` (also sent to W&B).

    Args:
        every: evaluation interval in generator steps.
        n_samples: samples per evaluation (2,500 in the VEEGAN/PacGAN tables).
        plot: save a figure at each evaluation.
        prog_bar: keys shown in the progress bar.
    """

    needs = SAMPLED_POINTS

    def __init__(
        self,
        every: int = 500,
        n_samples: int = 2500,
        plot: bool = True,
        prog_bar: tuple[str, ...] = ("modes", "hq", "mean", "std"),
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"ToyEvaluator: n_samples must be >= 1, got {n_samples}")
        super().__init__(every)
        self.n_samples, self.plot = n_samples, plot
        self.prog_bar = tuple(prog_bar)

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.evaluate(trainer, module)

    def metric_names(self, data: Any, family: Any) -> set[str]:
        return set(data.distribution.metric_names)

    def evaluate(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, float]:
        dist = trainer.datamodule.data.distribution
        samples = generate_across_ranks(trainer, module.family, self.n_samples)
        metrics = dist.evaluate(samples)
        step = module.g_step
        log_now(trainer, {f"val/{k}": v for k, v in metrics.items()}, step)
        trainer.progress_bar_metrics.update(
            {k: round(v, 3) for k, v in metrics.items() if k in self.prog_bar}
        )
        if self.plot and trainer.is_global_zero:
            self._save_plot(trainer, module, samples, dist, step, metrics)
        return metrics

    def _save_plot(self, trainer, module, samples, dist, step, metrics) -> None:
        title = f"step {step}: " + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
        family: CanCritic = module.family
        fig = dist.figure(samples, family.critic, title)
        if fig is None:
            return
        out = Path(trainer.default_root_dir) / "plots" / f"step_{step:07d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
        log_images(trainer, {"samples": out}, step)


def _pad(t: Tensor, n: int) -> Tensor:
    return torch.cat([t, t.new_zeros(n - len(t), *t.shape[1:])])


def generate_across_ranks(trainer: pl.Trainer, family: CanSample, n: int) -> Tensor:
    """``n`` samples from the fixed evaluation z (and labels), each rank generating its
    share, gathered in z order: the same samples as one process would make."""
    world, rank = trainer.world_size, trainer.global_rank
    if world == 1:
        return family.generate(n)
    share = -(-n // world)  # ceil: equal shares for all_gather
    part = slice(rank * share, (rank + 1) * share)
    z = _pad(family.fixed_z(n)[part], share)  # the last share is padded
    y = family.fixed_labels(n)
    y = None if y is None else _pad(y[part], share)
    gathered = trainer.strategy.all_gather(family.generate(share, z=z, y=y))  # (world, share, ...)
    return gathered.flatten(0, 1)[:n]  # drops the padding


def generate_share(trainer: pl.Trainer, family: CanSample, n: int) -> Tensor:
    """This rank's share (rows ``share_slice(n, world, rank)``) of the ``n`` samples of the
    fixed evaluation z (and labels), not gathered: all ``n`` with one process."""
    if trainer.world_size == 1:
        return family.generate(n)
    part = share_slice(n, trainer.world_size, trainer.global_rank)
    y = family.fixed_labels(n)
    z = family.fixed_z(n)[part]
    return family.generate(len(z), z=z, y=None if y is None else y[part])
