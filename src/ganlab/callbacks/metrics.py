"""Sample-quality metrics of image GANs on a schedule: FID, KID, IS, precision/recall and
mode coverage, with the best checkpoint kept by a monitored metric."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger

from ganlab.callbacks.checkpoint import save_atomic
from ganlab.callbacks.evaluate import generate_across_ranks
from ganlab.loggers import log_now
from ganlab.metrics.registry import metric
from ganlab.metrics.scorer import ImageScorer
from ganlab.module import GANModule

log = logging.getLogger(__name__)


class ImageMetrics(pl.Callback):
    """Every ``every`` G steps and after the last: ``n_samples`` from the fixed evaluation z
    (generated in shares across ranks and gathered) scored by an ``ImageScorer`` (FID, KID,
    IS, precision/recall, mode coverage; see ``ganlab.metrics.scorer``), logged as
    ``val/<metric>``. How the values were computed is in ``scorer.provenance`` (and the run
    summary). The best checkpoint by ``monitor`` is saved as ``checkpoints/best.ckpt``.

    Args:
        every: interval in G steps.
        n_samples: generated samples per evaluation.
        monitor: ``val/<metric>`` to keep the best checkpoint by (None: keep none); whether
            lower or higher is better comes from the metric registry
            (``ganlab.metrics.registry``: FID/KID lower, modes/IS/precision/recall higher).
        **scorer: the ``ImageScorer``'s arguments (n_real, extractor, metrics, ...).
    """

    def __init__(
        self,
        every: int = 2000,
        n_samples: int = 10_000,
        monitor: str | None = "val/fid",
        **scorer: Any,
    ) -> None:
        if every < 1 or n_samples < 2:
            raise ValueError(
                f"ImageMetrics: every >= 1 and n_samples >= 2 needed, got {every}, {n_samples}"
            )
        self.every, self.n_samples, self.monitor = every, n_samples, monitor
        self.scorer = ImageScorer(**scorer)
        self.best: float | None = None
        self._last_step: int | None = None
        self._active = False

    def setup(self, trainer: pl.Trainer, module: GANModule, stage: str) -> None:
        self._active = hasattr(trainer.datamodule, "image_shape")
        if self._active and self.monitor and metric(self.monitor).goal is None:
            log.warning(
                "metrics: %s is neither lower- nor higher-better: no best.ckpt", self.monitor
            )

    def on_train_batch_end(self, trainer: pl.Trainer, module: GANModule, *args) -> None:
        if module.status == "running" and self._active:
            if module.g_step % self.every == 0 or trainer.is_last_batch:
                self.evaluate(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: GANModule) -> None:
        if module.status == "running" and self._active and self._last_step != module.g_step:
            self.evaluate(trainer, module)

    def evaluate(self, trainer: pl.Trainer, module: GANModule) -> dict[str, float]:
        if not self.scorer.ready:
            self._prepare(trainer, module)
        start = time.perf_counter()
        if trainer.is_global_zero:  # it can take a while: say what is happening
            log.info("metrics at step %d: scoring %d samples...", module.g_step, self.n_samples)
        samples = generate_across_ranks(trainer, module, self.n_samples)  # (N, C, H, W)
        values = self.scorer.score(samples, module.fixed_labels(self.n_samples))
        step = self._last_step = module.g_step
        log_now(trainer, {f"val/{k}": v for k, v in values.items()}, step)
        trainer.progress_bar_metrics.update(
            {k: round(v, 3) for k, v in values.items() if k in ("fid", "modes")}
        )
        log.info(
            "metrics at step %d (%.1fs): %s",
            step,
            time.perf_counter() - start,
            ", ".join(f"{k} {v:.4g}" for k, v in values.items() if "/" not in k),
        )
        self._keep_best(trainer, values)
        if trainer.is_global_zero and self.scorer.fractions:
            self._plot_modes(trainer, values, step)
        return values

    def _plot_modes(self, trainer: pl.Trainer, values: dict[str, float], step: int) -> None:
        """The mode histogram as a figure in ``samples/modes_<step>.png`` (and W&B)."""
        import matplotlib.pyplot as plt

        from ganlab.callbacks.plots import plot_mode_fractions

        fractions = self.scorer.fractions
        title = (
            f"step {step}: {values['modes']:.0f} of {len(fractions)} modes, "
            f"KL to uniform {values['rkl']:.3g} ({self.n_samples} samples)"
        )
        fig = plot_mode_fractions(fractions, title)
        out_dir = Path(trainer.default_root_dir) / "samples"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"modes_{step:07d}.png"
        fig.savefig(path)
        plt.close(fig)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/modes_histogram", [str(path)], step=step)

    def _prepare(self, trainer: pl.Trainer, module: GANModule) -> None:
        """Rank 0 trains/caches the classifier and the real statistics first; the other
        ranks then read them from the cache."""
        if trainer.is_global_zero:
            log.info(
                "metrics: loading the domain classifier and the real statistics "
                "(the first time they are computed and cached)"
            )
            self.scorer.prepare(trainer.datamodule, module.device)
        trainer.strategy.barrier("ganlab-metrics-prepare")
        if not trainer.is_global_zero:
            self.scorer.prepare(trainer.datamodule, module.device)

    def _keep_best(self, trainer: pl.Trainer, values: dict[str, float]) -> None:
        if not self.monitor:
            return
        monitored = metric(self.monitor)  # lower or higher better: the registry says
        value = values.get(self.monitor.removeprefix("val/"))
        if value is not None and monitored.better(value, self.best):
            self.best = value
            path = Path(trainer.default_root_dir) / "checkpoints" / "best.ckpt"
            save_atomic(trainer, path)
            log.info(
                "metrics: new best %s %s: saved %s", self.monitor, monitored.format(value), path
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
