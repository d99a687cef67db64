"""Metrics of image translations: how close the outputs are to the targets (L1, PSNR, SSIM),
how real they look (FID/KID against real images of the output domain), whether they keep
the input's class (label preservation, the FCN-score idea of Isola et al. 2017, sec. 4.2,
with a domain classifier), and round-trip error (CycleGAN). Used by the translation metrics
callback during training and by ``python -m ganlab.evaluate`` on a checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from ganlab.metrics.registry import ImageMetric
from ganlab.metrics.scorer import ImageScorer

CLOSENESS = ("l1", "psnr", "ssim")


def closeness(output: Tensor, target: Tensor) -> dict[str, float]:
    """L1, PSNR (dB) and SSIM of images in [-1, 1] (data range 2)."""
    output, target = output.float(), target.float()
    return {
        "l1": float((output - target).abs().mean()),
        "psnr": float(peak_signal_noise_ratio(output, target, data_range=2.0)),
        "ssim": float(structural_similarity_index_measure(output, target, data_range=2.0)),
    }


class TranslationScorer:
    """Scores each direction of a translation family (``families.translation.Translation``)
    and names its values ``<metric>`` (one direction: Pix2Pix) or ``<direction>/<metric>``
    (CycleGAN: ``ab``, ``ba``):

    - ``l1``, ``psnr``, ``ssim`` against the targets, and ``psnr_input``/``ssim_input`` of the
      input itself where it has the target's shape (super-resolution: the bicubic baseline);
    - the image ``metrics`` (``fid``, ``kid``, a user's) of the outputs against real images of
      the output domain (an ``ImageScorer`` per direction, prepared once);
    - ``label_acc``: how often the output domain's classifier gives the input's class;
      ``classifier_acc``: that classifier's held-out accuracy on real images (the ceiling);
      ``label_rel`` = label_acc / classifier_acc;
    - ``cycle_l1``: L1 between an input and its round trip.

    Args:
        metrics: image metrics of the outputs (registry names).
        plugins: a user's image metrics (``+metrics=<name>``).
        weights_option: the option named when the Inception weights are missing.
        **scorer: the ``ImageScorer``'s other arguments (n_real, extractor, real_split, ...).
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("fid", "kid"),
        plugins: Sequence[ImageMetric] = (),
        weights_option: str = "callbacks.translation.inception_weights",
        **scorer: Any,
    ) -> None:
        self.metrics, self.plugins = tuple(metrics), tuple(plugins)
        self.scorer_args = {**scorer, "weights_option": weights_option}
        requested = ImageScorer(metrics=self.metrics, plugins=plugins, **self.scorer_args).requested
        #: the image metrics' registered values kept per direction (``fid``, ``kid``, ...)
        self.kept = {m.key.removeprefix("val/") for r in requested for m in r.logs}
        self.scorers: dict[str, ImageScorer] = {}

    def names(self, sources: Sequence[str]) -> set[str]:
        """What ``score`` can return for a family translating ``sources`` (its directions)."""
        per_direction = {*CLOSENESS, "psnr_input", "ssim_input", "cycle_l1"}
        per_direction |= {"label_acc", "classifier_acc", "label_rel", *self.kept}
        # one direction (Pix2Pix) logs <metric>, several (CycleGAN) <direction>/<metric>
        prefixes = [f"{d}/" for d in sources] if len(sources) > 1 else [""]
        return {f"{prefix}{name}" for prefix in prefixes for name in per_direction}

    def score(self, translations: Sequence[Any], device: Any) -> dict[str, float]:
        """The values of every direction in ``translations``, named as above."""
        values: dict[str, float] = {}
        for t in translations:
            prefix = f"{t.name}/" if t.name else ""
            values |= {f"{prefix}{k}": v for k, v in self._direction(t, device).items()}
        return values

    def _direction(self, t: Any, device: Any) -> dict[str, float]:
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
        out |= {k: v for k, v in scored.items() if k in self.kept}
        if "class_acc" in scored and "classifier_acc" in scored:
            out["label_acc"], out["classifier_acc"] = scored["class_acc"], scored["classifier_acc"]
            out["label_rel"] = scored["class_acc"] / scored["classifier_acc"]
        return out

    def _scorer(self, t: Any, device: Any) -> ImageScorer:
        """The scorer of ``t``'s output domain: its classifier and real statistics, prepared
        once (cached on disk across runs)."""
        if t.name not in self.scorers:
            scorer = ImageScorer(
                metrics=[*self.metrics, "modes"], plugins=self.plugins, **self.scorer_args
            )
            scorer.prepare(t.domain, device)
            self.scorers[t.name] = scorer
        return self.scorers[t.name]

    def provenance(self) -> dict[str, Any]:
        """How each direction's values were computed (extractor, sample counts, split)."""
        return {name or "ab": s.provenance for name, s in self.scorers.items()}
