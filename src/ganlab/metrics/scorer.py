"""Scores generated images: FID, KID, IS, precision/recall and mode coverage, with the
provenance of each value. Used by the metrics callback during training and by
``python -m ganlab.evaluate`` on a checkpoint."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.collectives import all_ranks, gather_shares, rank, share_slice, world_size
from ganlab.metrics.extractors import WEIGHTS_OPTION, ClassifierExtractor, InceptionExtractor
from ganlab.metrics.fidelity import feature_spread, kid_subset, real_stats  # noqa: F401
from ganlab.metrics.registry import (
    CLASSIFIER,
    FEATURES,
    IMAGE_METRICS,
    LABELS,
    LOGITS,
    SAMPLES,
    ImageMetric,
    Inputs,
    image_metrics,
)

log = logging.getLogger(__name__)

EXTRACTORS = ("classifier", "inception")
#: what each need of an image metric is made of, in the scorer's outputs
OUTPUTS = {FEATURES: "features", LOGITS: "logits", LABELS: "labels", SAMPLES: "samples"}


class ChannelwiseClassifier(nn.Module):
    """A 1-channel classifier applied to each channel of a stacked image: features are the
    channels' features side by side (B, 3F); logits are over the 1,000 digit triples,
    log p(d0) + log p(d1) + log p(d2) at index 100 d0 + 10 d1 + d2 (for IS)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def _channels(self, x: Tensor) -> list[Tensor]:
        return [x[:, c : c + 1] for c in range(x.shape[1])]  # (B, 1, H, W) each

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([self.classifier.features(c) for c in self._channels(x)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self._joint([self.classifier(c) for c in self._channels(x)])

    def _joint(self, logits: list[Tensor]) -> Tensor:
        d0, d1, d2 = (d.log_softmax(dim=1) for d in logits)
        joint = d0[:, :, None, None] + d1[:, None, :, None] + d2[:, None, None, :]
        return joint.flatten(1)  # (B, 1000): log-probabilities are valid logits

    def outputs(self, x: Tensor) -> dict[str, Tensor]:
        """Features, joint logits and mode labels 100 d0 + 10 d1 + d2 (as ``stacked_labels``)
        from one pass of the classifier over each channel."""
        parts = [self.classifier.outputs(c) for c in self._channels(x)]
        d0, d1, d2 = (p["labels"] for p in parts)
        return {
            "features": torch.cat([p["features"] for p in parts], dim=1),  # (B, 3F)
            "logits": self._joint([p["logits"] for p in parts]),
            "labels": d0 * 100 + d1 * 10 + d2,
        }


def stacked(spec: Any, classifier: Any) -> bool:
    """Whether the data's modes (``spec.modes``) are tuples of the classifier's classes, one
    per channel (Stacked MNIST: 1,000 triples of a 10-class digit classifier), so that each
    channel is classified apart, rather than the classifier's classes themselves."""
    return bool(spec.modes) and spec.modes != classifier.num_classes


def labeller(classifier: Any, spec: Any) -> Any:
    """Images -> each one's mode (int64), by ``classifier`` on the data of ``spec``."""
    from ganlab.metrics.classifier import predict, stacked_labels

    classify = stacked_labels if stacked(spec, classifier) else predict
    return lambda x: classify(classifier, x)


class ImageScorer:
    """Scores samples against a data module's real images with the registry's image metrics
    (``ganlab.metrics.registry.ImageMetric``): what the requested metrics need (features,
    logits, classifier labels, the samples) is computed once per evaluation, then each
    metric computes its values from it.

    Args:
        n_real: real images (the first of ``real_split``) for the statistics, cached on disk.
        extractor: feature space of FID/KID/IS/PR: ``classifier`` (a small CNN trained on
            the labelled base set, cached; offline) or ``inception`` (torch-fidelity's
            InceptionV3; ``inception_weights`` = a local weights file, else downloaded).
        metrics: names of registered image metrics: ``fid``, ``kid``, ``is``, ``pr``
            (precision/recall), ``modes`` (modes covered and KL to uniform by the
            classifier's labels; VEEGAN/PacGAN), or a user's (``registry.register``).
        real_split: ``train`` or ``test``.
        cache_dir: where the classifier and real statistics are cached (default
            ``$GANLAB_CACHE``, else ``~/.cache/ganlab``).
        kid_subset_size: KID's subset size (clamped to the sample counts).
        weights_option: the option named when the Inception weights are missing.
        plugins: a user's image metrics (built from ``+metrics=<name>``), scored too.
    """

    def __init__(
        self,
        n_real: int = 10_000,
        extractor: str = "classifier",
        metrics: tuple[str, ...] | list[str] = ("fid", "kid", "is", "pr", "modes"),
        real_split: str = "train",
        inception_weights: str | None = None,
        cache_dir: str | None = None,
        kid_subset_size: int = 1000,
        weights_option: str = WEIGHTS_OPTION,
        plugins: tuple[ImageMetric, ...] | list[ImageMetric] = (),
    ) -> None:
        if extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {extractor!r}")
        if n_real < 2:
            raise ValueError(f"n_real must be >= 2, got {n_real}")
        self.plugins = tuple(plugins)
        self.requested = [*image_metrics(metrics), *self.plugins]
        self.metrics = tuple(m.name for m in self.requested)
        self.n_real, self.extractor_name = n_real, extractor
        self.real_split, self.inception_weights = real_split, inception_weights
        self.cache_dir, self.kid_subset_size = cache_dir, kid_subset_size
        self.weights_option = weights_option  # named when the weights are missing
        self.classifier: Any = None
        self.classifier_info: dict[str, Any] = {}
        self.extractor: Any = None
        self.real: Any = None
        self.labels: Any = None  # images -> modes, by the classifier (``labeller``)
        self.modes = 0  # the data's mode count (0: none known)
        self.provenance: dict[str, Any] = {}
        self.fractions: list[float] = []  # per-mode fractions of the last ``score``
        self.real_extracted: list[int] = []  # real images each rank extracted in prepare
        self.ready = False

    @property
    def needs(self) -> set[str]:
        """What the requested metrics need."""
        return {need for m in self.requested for need in m.needs}

    def names(self, spec: Any, conditional: bool = False) -> set[str]:
        """What ``score`` can return for data of ``spec`` (``DataSpec``): the requested
        metrics' names (those needing the classifier only where the data has one) and the
        implied ones (``spread`` with features, ``classifier_acc`` with a classifier)."""
        has = set(self.needs) | {CLASSIFIER}
        if spec.classifier is None:
            has -= {LABELS, CLASSIFIER}
        names: set[str] = set()
        for m in self._computed(has):
            names |= m.names(spec.modes, conditional)
        return names

    def _computed(self, has: set[str]) -> list[ImageMetric]:
        """The requested metrics whose needs are in ``has``, then the implied ones."""
        wanted = [m for m in self.requested if set(m.needs) <= has]
        implied = [m for m in IMAGE_METRICS.values() if m.implied and m not in wanted]
        return wanted + [m for m in implied if set(m.needs) <= has]

    def prepare(
        self, datamodule: Any, device: torch.device | str, across_ranks: bool = False
    ) -> None:
        """Load (or train and cache) the classifier and the real statistics; ``across_ranks``:
        see ``prepare_real``."""
        self.load_nets(datamodule, device)
        self.prepare_real(datamodule, across_ranks)

    def load_nets(self, datamodule: Any, device: torch.device | str) -> None:
        """Load (or train and cache) the domain classifier and build the extractor."""
        from ganlab.metrics.classifier import load_or_train

        spec = datamodule.spec
        name, self.modes = spec.classifier, spec.modes
        if name is not None and (self.extractor_name == "classifier" or LABELS in self.needs):
            self.classifier, self.classifier_info = load_or_train(
                name, datamodule, cache_dir=self.cache_dir, device=device
            )
            self.labels = labeller(self.classifier, spec)
        elif name is None:
            log.warning(
                "metrics: no domain classifier for %s: no mode counts%s",
                type(datamodule).__name__,
                ""
                if self.extractor_name == "inception"
                else ", and no FID/KID/IS/PR unless callbacks.metrics.extractor=inception",
            )
        if self.extractor_name == "inception":
            self.extractor = InceptionExtractor(
                self.inception_weights, device=device, option=self.weights_option
            )
        elif self.classifier is not None:
            net = ChannelwiseClassifier(self.classifier) if stacked(spec, self.classifier) else None
            self.extractor = ClassifierExtractor(net or self.classifier, name=f"classifier_{name}")

    def prepare_real(self, datamodule: Any, across_ranks: bool = False) -> None:
        """The real statistics, from the cache or computed (and cached). ``across_ranks``: a
        collective call on every rank; on a miss each rank extracts its share of the real
        images (see ``fidelity.real_stats``)."""
        if self.extractor is not None and self.needs & {FEATURES, LOGITS}:
            self.real = self._real_stats(datamodule, across_ranks)
            counts = all_ranks([self.real.extracted]) if across_ranks else [[0]]
            self.real_extracted = [c[0] for c in counts]  # 0 each when read from the cache
        self.ready = True

    def _real_stats(self, datamodule: Any, across_ranks: bool) -> Any:
        key = {
            "data": datamodule.cache_key,
            "split": self.real_split,
            "image_size": datamodule.image_size,
            "n": self.n_real,
        }
        start = time.perf_counter()
        stats = real_stats(
            self.extractor,
            lambda: datamodule.real_images(self.real_split)[0][: self.n_real],
            key,
            self.cache_dir,
            across_ranks,
        )
        how = "read from the cache" if stats.cached else "computed and cached"
        log.info("metrics: real statistics %s in %.1fs", how, time.perf_counter() - start)
        return stats

    def score(self, samples: Tensor, requested: Tensor | None = None) -> dict[str, float]:
        """Metrics of ``samples`` (N, C, H, W) in [-1, 1]; ``requested``: the labels a
        conditional G was asked for (adds ``class_acc``)."""
        return self._values(self._outputs(samples), requested, [len(samples)])

    def score_share(
        self, share: Tensor, n: int, requested: Tensor | None = None
    ) -> dict[str, float]:
        """Metrics of ``n`` samples of which this rank holds rows ``share_slice(n, world,
        rank)`` (collective: every rank calls it). Each rank extracts the features (labels)
        of its share only; they are gathered in rank order, and every rank returns the
        values one process computes on all ``n``. ``requested``: all ``n`` labels."""
        world = world_size()
        expected = share_slice(n, world, rank())
        if len(share) != expected.stop - expected.start or len(share) == 0:
            raise ValueError(
                f"score_share: this rank's share of {n} samples over {world} ranks is "
                f"rows {expected.start}..{expected.stop} (non-empty), got {len(share)} rows"
            )
        outputs = gather_shares(self._outputs(share), n)
        counts = [c[0] for c in all_ranks([len(share)])]  # images each rank extracted
        return self._values(outputs, requested, counts)

    def _outputs(self, samples: Tensor) -> dict[str, Tensor]:
        """What the requested metrics need of ``samples``: features and logits from one
        extractor pass (with the labels, where the classifier gives all three), the
        classifier's labels, the samples."""
        out: dict[str, Tensor] = {}
        needs = self.needs
        if self.real is not None and needs & {FEATURES, LOGITS}:
            out = self.extractor(samples)
        if LABELS in needs and self.classifier is not None and "labels" not in out:
            out["labels"] = self.labels(samples).cpu()
        if SAMPLES in needs:
            out["samples"] = samples.detach().cpu()
        return out

    def _values(
        self, outputs: dict[str, Tensor], requested: Tensor | None, counts: list[int]
    ) -> dict[str, float]:
        has = {need for need, key in OUTPUTS.items() if key in outputs}
        has |= {CLASSIFIER} if self.classifier_info else set()
        inputs = Inputs(
            **{key: outputs.get(key) for key in OUTPUTS.values()},
            real=self.real,
            modes=self.modes,
            requested=requested,
            classifier_accuracy=self.classifier_info.get("accuracy"),
        )
        if FEATURES in has:
            n = len(outputs["features"])
            inputs.kid_subset_size = kid_subset(self.kid_subset_size, n, len(self.real.features))
            self.provenance = {
                "extractor": self.extractor.name,
                "n_fake": n,
                "n_real": len(self.real.features),
                "real_split": self.real_split,
                "kid_subset_size": inputs.kid_subset_size,
            }
        values: dict[str, float] = {}
        for m in self._computed(has):
            values |= m.compute(inputs)
        self.fractions = inputs.record.pop("mode_fractions", self.fractions)
        self.provenance |= inputs.record
        if len(counts) > 1:  # DDP: the images each rank extracted (real: when computed)
            self.provenance["extracted_per_rank"] = {"fake": counts, "real": self.real_extracted}
        return values
