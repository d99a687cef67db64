"""Scores generated samples of toy data on a schedule in G steps, and plots them."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from ganlab.callbacks.plots import plot_samples
from ganlab.loggers import log_now
from ganlab.module import GANModule

log = logging.getLogger(__name__)


class ToyEvaluator(pl.Callback):
    """Every ``every`` G steps and after the last one: draw ``n_samples`` from G, score
    them against the data distribution (``val/modes``, ``val/hq``, ``val/rkl``, ...),
    and save a figure of them under ``<run dir>/plots`` (also sent to W&B).

    Args:
        every: evaluation interval in generator steps.
        n_samples: samples per evaluation (2,500 in the VEEGAN/PacGAN tables).
        plot: save a figure at each evaluation.
        prog_bar: keys shown in the progress bar.
    """

    def __init__(
        self,
        every: int = 500,
        n_samples: int = 2500,
        plot: bool = True,
        prog_bar: tuple[str, ...] = ("modes", "hq", "mean", "std"),
    ) -> None:
        if every < 1 or n_samples < 1:
            raise ValueError(
                f"ToyEvaluator: every and n_samples must be >= 1, got {every}, {n_samples}"
            )
        self.every, self.n_samples, self.plot = every, n_samples, plot
        self.prog_bar = tuple(prog_bar)
        self._last_step: int | None = None  # G step of the last evaluation

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if module.status != "running" or not _is_toy(trainer):
            return
        if module.g_step % self.every == 0 or trainer.is_last_batch:
            self.evaluate(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # a run that stopped early, or a finished run resumed, ends evaluated too
        if module.status == "running" and _is_toy(trainer) and self._last_step != module.g_step:
            self.evaluate(trainer, module)

    def evaluate(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, float]:
        dist = trainer.datamodule.distribution
        samples = generate_across_ranks(trainer, module, self.n_samples)
        metrics = dist.evaluate(samples)
        step = self._last_step = module.g_step
        log_now(trainer, {f"val/{k}": v for k, v in metrics.items()}, step)
        trainer.progress_bar_metrics.update(
            {k: round(v, 3) for k, v in metrics.items() if k in self.prog_bar}
        )
        if self.plot and trainer.is_global_zero:
            self._save_plot(trainer, module, samples, dist, step, metrics)
        return metrics

    def _save_plot(self, trainer, module, samples, dist, step, metrics) -> None:
        title = f"step {step}: " + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
        fig = plot_samples(samples, dist, lambda x: _critic(module, x), title)
        if fig is None:
            return
        out = Path(trainer.default_root_dir) / "plots" / f"step_{step:07d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
        plt.close(fig)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("samples", [str(out)], step=step)


def _is_toy(trainer: pl.Trainer) -> bool:
    """Toy data (a distribution to score against); image data has its own callbacks."""
    return hasattr(trainer.datamodule, "distribution")


def _pad(t: Tensor, n: int) -> Tensor:
    return torch.cat([t, t.new_zeros(n - len(t), *t.shape[1:])])


def generate_across_ranks(trainer: pl.Trainer, module: GANModule, n: int) -> Tensor:
    """``n`` samples from the fixed evaluation z (and labels), each rank generating its
    share, gathered in z order: the same samples as one process would make."""
    world, rank = trainer.world_size, trainer.global_rank
    if world == 1:
        return module.generate(n)
    share = -(-n // world)  # ceil: equal shares for all_gather
    part = slice(rank * share, (rank + 1) * share)
    z = _pad(module.fixed_z(n)[part], share)  # the last share is padded
    y = module.fixed_labels(n)
    y = None if y is None else _pad(y[part], share)
    gathered = module.all_gather(module.generate(share, z=z, y=y))  # (world, share, ...)
    return gathered.flatten(0, 1)[:n]  # drops the padding


def _critic(module: pl.LightningModule, x):
    """D's raw output on ``x``, in eval mode (no BatchNorm statistics are updated)."""
    d = module.discriminator
    was_training = d.training
    d.eval()
    out = d(x.to(module.device))
    d.train(was_training)
    return out
