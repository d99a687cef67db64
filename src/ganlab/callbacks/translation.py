"""Metrics of image-translation families on a schedule (``ganlab.metrics.translation``: L1,
PSNR, SSIM, FID/KID, label preservation, round-trip error), with the best checkpoint kept
by a monitored metric."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl

from ganlab.callbacks.checkpoint import BestCheckpoint
from ganlab.callbacks.needs import TRANSLATIONS
from ganlab.callbacks.schedule import Scheduled
from ganlab.callbacks.summary import SummaryPart
from ganlab.families.protocols import CanTranslate
from ganlab.loggers import log_now
from ganlab.metrics.registry import described
from ganlab.metrics.translation import TranslationScorer

log = logging.getLogger(__name__)


class TranslationMetrics(SummaryPart, Scheduled):
    """Every ``every`` G steps and after the last: the family's translations of the first
    ``n_samples`` validation items, scored per direction by a ``TranslationScorer`` and
    logged as ``val/<metric>`` (Pix2Pix) or ``val/<direction>/<metric>`` (CycleGAN: ``ab``,
    ``ba``). The best checkpoint by ``monitor`` is saved as ``checkpoints/best.ckpt``.

    Args:
        every: interval in G steps.
        n_samples: validation items translated per evaluation.
        monitor: ``val/<metric>`` to keep the best checkpoint by (None: keep none).
        metrics: image metrics of the outputs (``fid``, ``kid``, ...).
        **scorer: the ``TranslationScorer``'s other arguments (n_real, extractor, plugins:
            the user's metrics selected with ``+metrics=<name>``, ...).
    """

    needs = TRANSLATIONS

    def __init__(
        self,
        every: int = 2000,
        n_samples: int = 1000,
        monitor: str | None = "val/fid",
        metrics: tuple[str, ...] | list[str] = ("fid", "kid"),
        **scorer: Any,
    ) -> None:
        super().__init__(every)
        self.n_samples, self.monitor = n_samples, monitor
        self.scorer = TranslationScorer(metrics, **scorer)
        self.keep = BestCheckpoint(monitor)

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        family: CanTranslate = module.family
        translations = family.translations(trainer.datamodule.data, self.n_samples)
        values = self.scorer.score(translations, module.device)
        step = module.g_step
        log_now(trainer, {f"val/{k}": v for k, v in values.items()}, step)
        log.info(
            "metrics at step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        )
        self.keep.update(trainer, values)

    def metric_names(self, data: Any, family: CanTranslate) -> set[str]:
        return self.scorer.names(list(family.sources))

    def summary(self, module: Any) -> dict[str, Any]:
        out = described(self.scorer.plugins)
        if self.scorer.scorers:
            out["metrics_provenance"] = self.scorer.provenance()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.keep.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep.best = state.get("best")
