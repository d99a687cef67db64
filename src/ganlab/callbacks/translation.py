"""Metrics of image-translation families on a schedule: how close the outputs are to the
targets (L1, PSNR, SSIM), how real they look (FID/KID against real images of the output
domain), whether they keep the input's class (label preservation, the FCN-score idea of
Isola et al. 2017, sec. 4.2, with a domain classifier), and round-trip error (CycleGAN)."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from ganlab.callbacks.checkpoint import BestCheckpoint
from ganlab.callbacks.schedule import Scheduled
from ganlab.callbacks.summary import SummaryPart
from ganlab.families.protocols import CanTranslate
from ganlab.families.translation import Translation
from ganlab.loggers import log_now
from ganlab.metrics.scorer import ImageScorer

log = logging.getLogger(__name__)


CLOSENESS = ("l1", "psnr", "ssim")


def closeness(output: Tensor, target: Tensor) -> dict[str, float]:
    """L1, PSNR (dB) and SSIM of images in [-1, 1] (data range 2)."""
    output, target = output.float(), target.float()
    return {
        "l1": float((output - target).abs().mean()),
        "psnr": float(peak_signal_noise_ratio(output, target, data_range=2.0)),
        "ssim": float(structural_similarity_index_measure(output, target, data_range=2.0)),
    }


class TranslationMetrics(SummaryPart, Scheduled):
    """Every ``every`` G steps and after the last: the family's translations of the first
    ``n_samples`` validation items, scored per direction and logged as ``val/<metric>``
    (Pix2Pix) or ``val/<direction>/<metric>`` (CycleGAN: ``ab``, ``ba``):

    - ``l1``, ``psnr``, ``ssim`` against the targets, and ``psnr_input``/``ssim_input`` of the
      input itself where it has the target's shape (super-resolution: the bicubic baseline);
    - ``fid``, ``kid`` against ``n_real`` real images of the output domain (classifier or
      Inception features, as ``ImageMetrics``);
    - ``label_acc``: how often the output domain's classifier gives the input's class;
      ``classifier_acc``: that classifier's held-out accuracy on real images (the ceiling);
      ``label_rel`` = label_acc / classifier_acc;
    - ``cycle_l1``: L1 between an input and its round trip.

    The best checkpoint by ``monitor`` is saved as ``checkpoints/best.ckpt``.
    """

    kinds = ("pairs", "domains")

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
        self.metrics, self.scorer_args = tuple(metrics), scorer
        self.scorers: dict[str, ImageScorer] = {}
        self.keep = BestCheckpoint(monitor)

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        values: dict[str, float] = {}
        family: CanTranslate = module.family
        for t in family.translations(trainer.datamodule.data, self.n_samples):
            prefix = f"{t.name}/" if t.name else ""
            values |= {f"{prefix}{k}": v for k, v in self._score(t, module.device).items()}
        step = module.g_step
        log_now(trainer, {f"val/{k}": v for k, v in values.items()}, step)
        log.info(
            "metrics at step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        )
        self.keep.update(trainer, values)

    def metric_names(self, data: Any, family: Any) -> set[str]:
        per_direction = {*CLOSENESS, "psnr_input", "ssim_input", "cycle_l1"}
        per_direction |= {m for m in self.metrics if m in ("fid", "kid")}
        per_direction |= {"label_acc", "classifier_acc", "label_rel"}
        # one direction (Pix2Pix) logs val/<metric>, several (CycleGAN) val/<direction>/<metric>
        prefixes = [f"{d}/" for d in family.sources] if len(family.sources) > 1 else [""]
        return {f"{prefix}{name}" for prefix in prefixes for name in per_direction}

    def _score(self, t: Translation, device: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        if t.target is not None:
            out |= closeness(t.output, t.target)
            if t.source.shape == t.target.shape:
                base = closeness(t.source, t.target)
                out |= {"psnr_input": base["psnr"], "ssim_input": base["ssim"]}
        if t.cycle is not None:
            out["cycle_l1"] = float((t.cycle.float() - t.source.float()).abs().mean())
        scorer = self._scorer(t, device)
        scored = scorer.score(t.output, t.labels)
        out |= {k: scored[k] for k in ("fid", "kid") if k in scored}
        if "class_acc" in scored and "classifier_acc" in scored:
            out["label_acc"], out["classifier_acc"] = scored["class_acc"], scored["classifier_acc"]
            out["label_rel"] = scored["class_acc"] / scored["classifier_acc"]
        return out

    def _scorer(self, t: Translation, device: Any) -> ImageScorer:
        """The scorer of ``t``'s output domain: its classifier and real statistics, prepared
        once (cached on disk across runs)."""
        if t.name not in self.scorers:
            scorer = ImageScorer(
                metrics=[*self.metrics, "modes"],
                weights_option="callbacks.translation.inception_weights",
                **self.scorer_args,
            )
            scorer.prepare(t.domain, device)
            self.scorers[t.name] = scorer
        return self.scorers[t.name]

    def summary(self, module: Any) -> dict[str, Any]:
        return {
            "metrics_provenance": {name or "ab": s.provenance for name, s in self.scorers.items()}
        } if self.scorers else {}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.keep.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep.best = state.get("best")
