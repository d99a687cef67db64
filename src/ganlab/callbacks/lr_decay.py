"""Learning-rate decay over the last part of a run, counted in G steps.

Annealing the step size towards the end of training is the standard way to trade the
exploration of large steps for the precision of small ones (stochastic approximation,
Robbins & Monro 1951; the "linear decay to zero" of BigGAN-style and StyleGAN-style
schedules; cosine annealing, Loshchilov & Hutter 2017, SGDR).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl

SHAPES = ("linear", "cosine")


class LRDecay(pl.Callback):
    """Scales every optimizer's lr by a factor that goes from 1 to ``final`` between G
    step ``start * total`` and G step ``total`` (the end of the run).

    The base lr of each param group is kept in the group as ``initial_lr`` (saved in the
    optimizer's state, so a resumed run keeps decaying from the configured lr).

    Args:
        total: G steps of the run (``${steps}``).
        start: fraction of ``total`` at which the decay begins (0 = from the first step).
        final: lr factor reached at the last step (0 = decay to zero).
        shape: ``linear`` or ``cosine``.
    """

    def __init__(
        self, total: int, start: float = 0.5, final: float = 0.0, shape: str = "linear"
    ) -> None:
        if total < 1 or not 0.0 <= start < 1.0 or final < 0:
            raise ValueError(
                "LRDecay: need total >= 1, 0 <= start < 1 and final >= 0; "
                f"got {total}, {start}, {final}"
            )
        if shape not in SHAPES:
            raise ValueError(f"LRDecay: shape must be one of {SHAPES}, got {shape!r}")
        self.total, self.start, self.final, self.shape = total, start, final, shape

    def factor(self, step: int) -> float:
        """The lr factor at G step ``step``."""
        begin = self.start * self.total
        t = min(max((step - begin) / max(self.total - begin, 1), 0.0), 1.0)
        if self.shape == "cosine":
            t = 0.5 * (1 - math.cos(math.pi * t))
        return 1.0 + (self.final - 1.0) * t

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        scale = self.factor(module.g_step)
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * scale
