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
from ganlab.metrics.coverage import class_coverage
from ganlab.metrics.extractors import WEIGHTS_OPTION, ClassifierExtractor, InceptionExtractor
from ganlab.metrics.fidelity import fidelity_metrics, kid_subset, real_stats

log = logging.getLogger(__name__)

EXTRACTORS = ("classifier", "inception")
FIDELITY = ("fid", "kid", "is", "pr")
#: what each requested metric logs (``_fidelity``, ``_modes``); ``spread`` comes with any of
#: FIDELITY, ``class_frac/<c>`` with ``modes`` on 10-class data
NAMES = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "pr": ("precision", "recall", "density", "coverage"),
    "modes": ("modes", "rkl", "classifier_acc"),
}
STACKED_MODES = 1000  # 3 channels x 10 digits (VEEGAN/PacGAN stacked MNIST)


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


def feature_spread(fake: Tensor, real_sigma: Tensor) -> float:
    """sqrt(trace Σ_fake / trace Σ_real) of the feature covariances FID compares: how widely
    the samples spread in feature space against the real images (1: as widely; a collapsed
    G approaches 0). Needs no classifier, so it works on any data set."""
    fake_trace = fake.double().var(dim=0).sum()  # unbiased, as FID's covariance
    return float((fake_trace / real_sigma.double().diagonal().sum()).sqrt())


class ImageScorer:
    """Scores samples against a data module's real images.

    Args:
        n_real: real images (the first of ``real_split``) for the statistics, cached on disk.
        extractor: feature space of FID/KID/IS/PR: ``classifier`` (a small CNN trained on
            the labelled base set, cached; offline) or ``inception`` (torch-fidelity's
            InceptionV3; ``inception_weights`` = a local weights file, else downloaded).
        metrics: any of ``fid``, ``kid``, ``is``, ``pr`` (precision/recall), ``modes``
            (modes covered and KL to uniform by the classifier's labels; VEEGAN/PacGAN).
        real_split: ``train`` or ``test``.
        cache_dir: where the classifier and real statistics are cached (default
            ``$GANLAB_CACHE``, else ``~/.cache/ganlab``).
        kid_subset_size: KID's subset size (clamped to the sample counts).
        weights_option: the option named when the Inception weights are missing.
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
    ) -> None:
        if extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {extractor!r}")
        unknown = sorted(set(metrics) - {*FIDELITY, "modes"})
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(FIDELITY)}, modes")
        if n_real < 2:
            raise ValueError(f"n_real must be >= 2, got {n_real}")
        self.n_real, self.extractor_name, self.metrics = n_real, extractor, tuple(metrics)
        self.real_split, self.inception_weights = real_split, inception_weights
        self.cache_dir, self.kid_subset_size = cache_dir, kid_subset_size
        self.weights_option = weights_option  # named when the weights are missing
        self.classifier: Any = None
        self.classifier_info: dict[str, Any] = {}
        self.extractor: Any = None
        self.real: Any = None
        self.provenance: dict[str, Any] = {}
        self.fractions: list[float] = []  # per-mode fractions of the last ``score``
        self.channels = 1  # of the last samples scored (3: stacked, 1,000 modes)
        self.real_extracted: list[int] = []  # real images each rank extracted in prepare
        self.ready = False

    def names(self, spec: Any, conditional: bool = False) -> set[str]:
        """What ``score`` can return for data of ``spec`` (``DataSpec``): the requested
        metrics' names; mode coverage only where the data has a classifier."""
        wanted = [m for m in self.metrics if m != "modes" or spec.classifier is not None]
        names = {name for m in wanted for name in NAMES[m]}
        if set(wanted) & set(FIDELITY):
            names.add("spread")
        if "modes" in wanted:
            names |= {f"class_frac/{c}" for c in range(10)}
            if conditional:
                names.add("class_acc")
        return names

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

        name = datamodule.spec.classifier
        if name is not None and (self.extractor_name == "classifier" or "modes" in self.metrics):
            self.classifier, self.classifier_info = load_or_train(
                name, datamodule, cache_dir=self.cache_dir, device=device
            )
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
            stacked = datamodule.channels == 3
            net = ChannelwiseClassifier(self.classifier) if stacked else self.classifier
            self.extractor = ClassifierExtractor(net, name=f"classifier_{name}")

    def prepare_real(self, datamodule: Any, across_ranks: bool = False) -> None:
        """The real statistics, from the cache or computed (and cached). ``across_ranks``: a
        collective call on every rank; on a miss each rank extracts its share of the real
        images (see ``fidelity.real_stats``)."""
        if self.extractor is not None and set(self.metrics) & set(FIDELITY):
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
        """What the metrics need of ``samples``: features and logits (FID/KID/IS/PR) and mode
        labels, from one extractor pass where the classifier gives both."""
        out: dict[str, Tensor] = {}
        self.channels = samples.shape[1]
        if self.real is not None and set(self.metrics) & set(FIDELITY):
            out = self.extractor(samples)
        if "modes" in self.metrics and self.classifier is not None and "labels" not in out:
            from ganlab.metrics.classifier import predict, stacked_labels

            classify = stacked_labels if samples.shape[1] == 3 else predict
            out["labels"] = classify(self.classifier, samples).cpu()
        return out

    def _values(
        self, outputs: dict[str, Tensor], requested: Tensor | None, counts: list[int]
    ) -> dict[str, float]:
        values = self._fidelity(outputs) | self._modes(outputs, requested)
        if self.classifier_info:
            values["classifier_acc"] = float(self.classifier_info["accuracy"])
        if len(counts) > 1:  # DDP: the images each rank extracted (real: when computed)
            self.provenance["extracted_per_rank"] = {"fake": counts, "real": self.real_extracted}
        return values

    def _fidelity(self, outputs: dict[str, Tensor]) -> dict[str, float]:
        wanted = [m for m in self.metrics if m in FIDELITY]
        if not wanted or self.real is None:
            return {}
        n = len(outputs["features"])
        subset = kid_subset(self.kid_subset_size, n, len(self.real.features))
        values = fidelity_metrics(outputs, self.real, wanted, kid_subset_size=subset)
        values["spread"] = feature_spread(outputs["features"], self.real.sigma)
        self.provenance = {
            "extractor": self.extractor.name,
            "n_fake": n,
            "n_real": len(self.real.features),
            "real_split": self.real_split,
            "kid_subset_size": subset,
        }
        renamed = {"kid_mean": "kid", "is_mean": "is"}
        return {renamed.get(k, k): float(v) for k, v in values.items()}

    def _modes(self, outputs: dict[str, Tensor], requested: Tensor | None) -> dict[str, float]:
        if "modes" not in self.metrics or self.classifier is None:
            return {}
        labels = outputs["labels"]
        stacked = self.channels == 3
        coverage = class_coverage(labels, STACKED_MODES if stacked else 10)
        values = {"modes": float(coverage["modes"]), "rkl": float(coverage["kl"])}
        self.fractions = coverage["fractions"]
        if not stacked:  # 10 classes: one scalar each (1,000 triples: the figure only)
            values |= {f"class_frac/{c}": p for c, p in enumerate(self.fractions)}
        if requested is not None:  # a conditional G: how often it made the class asked for
            values["class_acc"] = float((labels == requested.cpu()).float().mean())
        self.provenance["modes_n"] = len(labels)
        return values
