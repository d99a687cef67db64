"""Sample-quality metrics of image GANs on a schedule: FID, KID, IS, precision/recall and
mode coverage, with the best checkpoint kept by a monitored metric."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ganlab.callbacks.checkpoint import BestCheckpoint
from ganlab.callbacks.evaluate import generate_share
from ganlab.callbacks.needs import SAMPLED_IMAGES
from ganlab.callbacks.schedule import Scheduled
from ganlab.callbacks.summary import SummaryPart
from ganlab.families.protocols import CanSample
from ganlab.loggers import log_images, log_now
from ganlab.metrics.registry import described
from ganlab.metrics.scorer import ImageScorer
from ganlab.module import GANModule

log = logging.getLogger(__name__)


class ImageMetrics(SummaryPart, Scheduled):
    """Every ``every`` G steps and after the last: ``n_samples`` from the fixed evaluation z
    (each rank generates and extracts the features of its share; the features are gathered)
    scored by an ``ImageScorer`` (FID, KID,
    IS, precision/recall, mode coverage; see ``ganlab.metrics.scorer``), logged as
    ``val/<metric>``. How the values were computed is in ``scorer.provenance`` (and the run
    summary). The best checkpoint by ``monitor`` is saved as ``checkpoints/best.ckpt``.

    Args:
        every: interval in G steps.
        n_samples: generated samples per evaluation.
        monitor: ``val/<metric>`` to keep the best checkpoint by (None: keep none); whether
            lower or higher is better comes from the metric registry.
        **scorer: the ``ImageScorer``'s arguments (n_real, extractor, metrics, plugins: the
            user's metrics selected with ``+metrics=<name>``, ...).
    """

    needs = SAMPLED_IMAGES

    def __init__(
        self,
        every: int = 2000,
        n_samples: int = 10_000,
        monitor: str | None = "val/fid",
        **scorer: Any,
    ) -> None:
        if n_samples < 2:
            raise ValueError(f"ImageMetrics: n_samples >= 2 needed, got {n_samples}")
        super().__init__(every)
        self.n_samples, self.monitor = n_samples, monitor
        self.scorer = ImageScorer(**scorer)
        self.keep = BestCheckpoint(monitor)

    def act(self, trainer: pl.Trainer, module: GANModule) -> None:
        self.evaluate(trainer, module)

    def metric_names(self, data: Any, family: Any) -> set[str]:
        return self.scorer.names(data.spec, conditional=family.num_classes > 0)

    def evaluate(self, trainer: pl.Trainer, module: GANModule) -> dict[str, float]:
        if not self.scorer.ready:
            self._prepare(trainer, module)
        start = time.perf_counter()
        if trainer.is_global_zero:  # it can take a while: say what is happening
            log.info("metrics at step %d: scoring %d samples...", module.g_step, self.n_samples)
        family: CanSample = module.family
        share = generate_share(trainer, family, self.n_samples)  # (N / world, C, H, W)
        values = self.scorer.score_share(share, self.n_samples, family.fixed_labels(self.n_samples))
        step = module.g_step
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
        self.keep.update(trainer, values)
        if trainer.is_global_zero and self.scorer.fractions:
            self._plot_modes(trainer, values, step)
        return values

    def _plot_modes(self, trainer: pl.Trainer, values: dict[str, float], step: int) -> None:
        """The mode histogram as a figure in ``samples/modes_<step>.png`` (and W&B)."""
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
        log_images(trainer, {"val/modes_histogram": path}, step)

    def _prepare(self, trainer: pl.Trainer, module: GANModule) -> None:
        """Rank 0 trains/caches the classifier first; the other ranks then read it from the
        cache. The real statistics are read from the cache or computed by all ranks, each
        extracting its share of the real images."""
        if trainer.is_global_zero:
            log.info(
                "metrics: loading the domain classifier and the real statistics "
                "(the first time they are computed and cached)"
            )
            self.scorer.load_nets(trainer.datamodule.data, module.device)
        trainer.strategy.barrier("ganlab-metrics-prepare")
        if not trainer.is_global_zero:
            self.scorer.load_nets(trainer.datamodule.data, module.device)
        self.scorer.prepare_real(trainer.datamodule.data, across_ranks=trainer.world_size > 1)

    def summary(self, module: GANModule) -> dict[str, Any]:
        """How the metrics were computed, and the last evaluation's mode fractions."""
        out: dict[str, Any] = described(self.scorer.plugins)
        if self.scorer.provenance:
            out["metrics_provenance"] = self.scorer.provenance
        if self.scorer.fractions:
            out["mode_fractions"] = self.scorer.fractions
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.keep.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep.best = state.get("best")
