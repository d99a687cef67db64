"""One registry of the metrics ganlab logs: name, direction, format, what each needs and how
it computes.

A logged value is a ``Metric`` (key, label, direction, format, floor). A metric the image
scorer computes is an ``ImageMetric``: the values it logs, what it needs of the samples
(``NEEDS``) and its ``compute``; the scorer (``ganlab.metrics.scorer``) gets what the
requested metrics need once (features, labels) and loops over them. The registry serves the
scorer, the sweep table, the comparison report, best-checkpoint selection, the console
summary and the ``optimized_metric`` checks, so a metric's direction is stated once.

A user's metric is one ``ImageMetric`` subclass and one YAML in their package's
``conf/metrics/`` on ``hydra.searchpath`` (``# @package metrics.<name>`` and its
``_target_``), selected with ``+metrics=<name>``; the run registers it (``register``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

from ganlab import diagnostics as diag
from ganlab.metrics.entry import (  # noqa: F401 - the registry's types, used from here
    CLASSIFIER,
    FEATURES,
    LABELS,
    LOGITS,
    NEEDS,
    SAMPLES,
    ImageMetric,
    Inputs,
    Metric,
)


def _fidelity(inputs: Inputs, name: str) -> dict[str, float]:
    from ganlab.metrics.fidelity import fidelity_metrics

    fake = {"features": inputs.features, "logits": inputs.logits}
    return fidelity_metrics(fake, inputs.real, [name], kid_subset_size=inputs.kid_subset_size)


# the values the image metrics log, in the registry's order below
FID = Metric("val/fid", "FID", "min", headline=True)
KID = Metric("val/kid", "KID", "min", ".3g")
IS = Metric("val/is", "IS", "max")
PR = (
    Metric("val/precision", "precision", "max", ".3f"),
    Metric("val/recall", "recall", "max", ".3f"),
    Metric("val/density", "density", "max", ".3f"),  # ~1 for real data; > 1 crowds real modes
    Metric("val/coverage", "coverage", "max", ".3f"),
)
CLASSIFIER_ACC = Metric("val/classifier_acc", "classifier acc", None, ".3f")  # of the data
CLASS_ACC = Metric("val/class_acc", "class acc", "max", ".3f")
MODES = Metric("val/modes", "modes", "max", ".0f", headline=True)
RKL = Metric("val/rkl", "reverse KL", "min", ".3f", headline=True)
SPREAD = Metric("val/spread", "spread", None, ".3f")  # samples' spread / the data's (1: as wide)


class Fid(ImageMetric):
    """Fréchet distance of the feature Gaussians (Heusel et al. 2017)."""

    name, logs, needs = "fid", (FID,), (FEATURES,)

    def compute(self, inputs: Inputs) -> dict[str, float]:
        return {"fid": float(_fidelity(inputs, "fid")["fid"])}


class Kid(ImageMetric):
    """Kernel inception distance, mean and std over subsets (Bińkowski et al. 2018)."""

    name, logs, needs, also = "kid", (KID,), (FEATURES,), ("kid_std",)

    def compute(self, inputs: Inputs) -> dict[str, float]:
        out = _fidelity(inputs, "kid")
        return {"kid": float(out["kid_mean"]), "kid_std": float(out["kid_std"])}


class InceptionScore(ImageMetric):
    """Inception score on the extractor's logits (Salimans et al. 2016)."""

    name, logs, needs, also = "is", (IS,), (FEATURES, LOGITS), ("is_std",)

    def compute(self, inputs: Inputs) -> dict[str, float]:
        out = _fidelity(inputs, "is")
        return {"is": float(out["is_mean"]), "is_std": float(out["is_std"])}


class PrecisionRecall(ImageMetric):
    """Precision, recall, density and coverage of k-NN feature manifolds (Kynkäänniemi et
    al. 2019; Naeem et al. 2020)."""

    name, logs, needs = "pr", PR, (FEATURES,)

    def compute(self, inputs: Inputs) -> dict[str, float]:
        return {k: float(v) for k, v in _fidelity(inputs, "pr").items()}


class Spread(ImageMetric):
    """The samples' feature spread against the real images' (``fidelity.feature_spread``),
    whenever features are extracted: the health callback's collapse flag reads it."""

    name, logs, needs, implied = "spread", (SPREAD,), (FEATURES,), True

    def compute(self, inputs: Inputs) -> dict[str, float]:
        from ganlab.metrics.fidelity import feature_spread

        return {"spread": feature_spread(inputs.features, inputs.real.sigma)}


class ClassifierAccuracy(ImageMetric):
    """The domain classifier's held-out accuracy, whenever it is loaded: the ceiling of the
    label metrics."""

    name, logs, needs, implied = "classifier_acc", (CLASSIFIER_ACC,), (CLASSIFIER,), True

    def compute(self, inputs: Inputs) -> dict[str, float]:
        return {"classifier_acc": float(inputs.classifier_accuracy)}


class ModeCoverage(ImageMetric):
    """Modes covered and KL to uniform by the classifier's labels over the data's modes
    (VEEGAN/PacGAN); ``class_frac/<c>`` for data of at most 10 modes; ``class_acc``: how
    often a conditional G made the class it was asked for."""

    name, logs, needs = "modes", (CLASS_ACC, MODES, RKL), (LABELS,)

    def names(self, modes: int, conditional: bool) -> set[str]:
        names = {"modes", "rkl"} | ({"class_acc"} if conditional else set())
        if 0 < modes <= 10:
            names |= {f"class_frac/{c}" for c in range(modes)}
        return names

    def compute(self, inputs: Inputs) -> dict[str, float]:
        from ganlab.metrics.coverage import class_coverage

        if not inputs.modes:
            raise ValueError("metric 'modes' needs the data's mode count (DataSpec.modes)")
        coverage = class_coverage(inputs.labels, inputs.modes)
        values = {"modes": float(coverage["modes"]), "rkl": float(coverage["kl"])}
        inputs.record |= {"mode_fractions": coverage["fractions"], "modes_n": len(inputs.labels)}
        if inputs.modes <= 10:  # one scalar each (1,000 triples: the figure only)
            values |= {f"class_frac/{c}": p for c, p in enumerate(coverage["fractions"])}
        if inputs.requested is not None:  # a conditional G: how often it made the class asked
            values["class_acc"] = float((inputs.labels == inputs.requested.cpu()).float().mean())
        return values


#: the image metrics by name: ganlab's, then the user's (``register``)
IMAGE_METRICS: dict[str, ImageMetric] = {
    m.name: m
    for m in (
        Fid(),
        Kid(),
        InceptionScore(),
        PrecisionRecall(),
        ModeCoverage(),
        Spread(),
        ClassifierAccuracy(),
    )
}

_METRICS = (
    # image samples (ImageMetric above, computed by ganlab.metrics.scorer)
    FID,
    KID,
    IS,
    *PR,
    CLASSIFIER_ACC,
    CLASS_ACC,
    # mode coverage (toy mixtures, digits, stacked sets)
    MODES,
    Metric("val/hq", "HQ %", "max", ".1f", headline=True),
    RKL,
    SPREAD,
    Metric("val/mode_spread", "mode spread", None, ".3f"),  # spread inside modes / the data's
    # the whole distribution against the data (ganlab.metrics.distances), beside the same
    # statistic between real samples of the same size (its floor: what a perfect G scores)
    Metric("val/mmd", "MMD²", "min", ".3g", headline=True, floor="val/mmd_floor"),
    Metric("val/mmd_floor", "MMD² floor", None, ".3g"),
    # the 1-D Gaussian
    Metric("val/w1", "W1", "min", ".3f", headline=True, floor="val/w1_floor"),
    Metric("val/w1_floor", "W1 floor", None, ".3f"),
    Metric("val/ks", "KS", "min", ".3f", headline=True, floor="val/ks_floor"),
    Metric("val/ks_floor", "KS floor", None, ".3f"),
    Metric("val/mean", "mean", None, ".3f", headline=True),
    Metric("val/std", "std", None, ".3f", headline=True),
    # image translation (ganlab.metrics.translation); CycleGAN logs val/<ab|ba>/<metric>
    Metric("val/l1", "L1", "min", ".4f"),
    Metric("val/psnr", "PSNR dB", "max", ".2f", headline=True),
    Metric("val/ssim", "SSIM", "max", ".3f", headline=True),
    Metric("val/psnr_input", "input PSNR dB", None, ".2f"),
    Metric("val/ssim_input", "input SSIM", None, ".3f"),
    Metric("val/label_acc", "label acc", "max", ".3f", headline=True),
    Metric("val/label_rel", "label acc / ceiling", "max", ".3f"),
    Metric("val/cycle_l1", "cycle L1", "min", ".4f", headline=True),
    # training diagnostics (curves)
    Metric(diag.logged(diag.D_LOSS), "D loss", None),
    Metric(diag.logged(diag.G_LOSS), "G loss", None),
    Metric(diag.logged(diag.GRAD_NORM_D), "D grad norm", None),
    Metric(diag.logged(diag.GRAD_NORM_G), "G grad norm", None),
)
METRICS: dict[str, Metric] = {m.key: m for m in _METRICS}
SHIPPED = frozenset(METRICS) | frozenset(IMAGE_METRICS)


def register(entry: ImageMetric) -> ImageMetric:
    """Add a user's image metric (``+metrics=<name>``): the scorer can compute it and its
    values are ranked, formatted and checked like ganlab's. ``ValueError`` when it takes a
    name of ganlab's or needs something the scorer does not give."""
    unknown = sorted(set(entry.needs) - set(NEEDS))
    if not entry.name or entry.name in SHIPPED or unknown:
        raise ValueError(
            f"metric {type(entry).__name__}: needs a name that is not ganlab's "
            f"(got {entry.name!r}) and needs among {', '.join(NEEDS)} (got {unknown or 'them'})"
        )
    IMAGE_METRICS[entry.name] = entry
    declare({m.key: asdict(m) for m in entry.logs})
    return entry


def register_configured(cfg: Any) -> None:
    """Register the user's image metrics of a run's config (``metrics``: name -> config with a
    ``_target_``, from ``+metrics=<name>``), before anything checks a metric against the
    registry: the run, and before it the sweep (a search's direction, ``ganlab.search``)."""
    from ganlab.assemble import build_node

    for node in cfg.get("metrics", {}).values():
        register(build_node(node, "metric"))


def declare(described: dict[str, dict[str, Any]]) -> None:
    """Register logged values described as data (``Metric`` fields by key), as a run's
    summary records its user metrics (``described``), for the report of its sweep."""
    for key, fields in described.items():
        if key not in SHIPPED:
            METRICS[key] = Metric(**{**fields, "key": key})


#: the run summary's key for the descriptions of a user's metrics (``described``)
DESCRIBED = "metric_registry"


def described(entries: Iterable[ImageMetric]) -> dict[str, Any]:
    """For a run summary: the values that a user's image metrics log, described as data
    (``{DESCRIBED: {key: Metric fields}}``; nothing without any), so that the report of a
    sweep ranks and formats them without importing the user's code (``declare``)."""
    values = {m.key: asdict(m) for entry in entries for m in entry.logs}
    return {DESCRIBED: values} if values else {}


def image_metrics(names: Iterable[str]) -> list[ImageMetric]:
    """The image metrics of ``names``; ``ValueError`` naming the known ones for another."""
    names = list(names)
    unknown = [n for n in names if n not in IMAGE_METRICS]
    if unknown:
        known = ", ".join(n for n, m in IMAGE_METRICS.items() if not m.implied)
        raise ValueError(f"unknown metrics {unknown}; choose from {known}")
    return [IMAGE_METRICS[n] for n in names]


def metric(key: str) -> Metric:
    """The registered metric ``key``. A key with a qualifier between the group and the name
    (``val/ab/fid``: CycleGAN's direction A -> B) is the metric of ``val/fid``, labelled
    "ab FID". An unregistered key gets no goal and a plain format (shown, never ranked)."""
    if key in METRICS:
        return METRICS[key]
    group, *middle, name = key.split("/")
    base = METRICS.get(f"{group}/{name}")
    if base is not None and middle:
        return replace(base, key=key, label=f"{'/'.join(middle)} {base.label}")
    return Metric(key, key.split("/", 1)[-1])


def registered(key: str) -> bool:
    """Whether ganlab logs ``key`` in some run: a registered metric, or one qualified by a
    direction (``val/ab/fid``)."""
    group, *middle, name = key.split("/")
    return key in METRICS or (len(middle) == 1 and f"{group}/{name}" in METRICS)


def order(key: str) -> tuple[int, str]:
    """Sort key of logged keys: registry order (a qualified key by its metric), then name."""
    group, *_, name = key.split("/")
    keys = list(METRICS)
    base = key if key in METRICS else f"{group}/{name}"
    return (keys.index(base) if base in METRICS else len(keys), key)
