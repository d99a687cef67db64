"""The types of the metric registry (``ganlab.metrics.registry``): a logged value
(``Metric``), and a metric of generated images that the scorer computes (``ImageMetric``)
from what it needs (``NEEDS``, handed over as ``Inputs``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    """A logged value: ``key`` as logged (``val/fid``), a short ``label`` for tables,
    ``goal`` ``min``/``max`` (or ``None``: no better or worse, e.g. a mean), a format spec
    for its value, whether a run's last console line shows it (``headline``), and the key of
    its noise floor (``floor``: what real data scores, logged beside it) if it has one."""

    key: str
    label: str
    goal: str | None = None
    fmt: str = ".4g"
    headline: bool = False
    floor: str | None = None

    def __post_init__(self) -> None:
        if self.goal not in ("min", "max", None):
            raise ValueError(f"Metric {self.key}: goal must be 'min', 'max' or None")

    def better(self, a: float, b: float | None) -> bool:
        """True when ``a`` beats ``b`` (any finite value beats None or a non-finite one)."""
        if self.goal is None or a is None or not math.isfinite(a):
            return False
        if b is None or not math.isfinite(b):
            return True
        return a < b if self.goal == "min" else a > b

    def best(self, values: list[float | None]) -> float | None:
        """The best finite value of ``values`` (None when there is none or no goal)."""
        best = None
        for v in values:
            if v is not None and self.better(v, best):
                best = v
        return best

    def format(self, value: float | None) -> str:
        if value is None:
            return "-"
        if not math.isfinite(value):
            return str(value)
        return format(value, self.fmt)


#: What an ``ImageMetric`` may need; the scorer computes each once per evaluation and only
#: when a metric asks for it (features cost an extractor pass over every sample).
FEATURES = "features"  # the extractor's features of the samples (N, F) and the real statistics
LOGITS = "logits"  # the extractor's logits of the samples (N, K), from the same pass
LABELS = "labels"  # the domain classifier's mode of each sample (N,) and the data's mode count
CLASSIFIER = "classifier"  # the domain classifier's held-out accuracy on real images
SAMPLES = "samples"  # the samples themselves (N, C, H, W) in [-1, 1]
NEEDS = (FEATURES, LOGITS, LABELS, CLASSIFIER, SAMPLES)


@dataclass
class Inputs:
    """What the scorer hands each ``ImageMetric.compute``: the parts that the metrics of the
    evaluation need (the others None), on the CPU, over all the samples scored.

    Args:
        features, logits: the extractor's outputs on the samples (``FEATURES``, ``LOGITS``).
        real: the real statistics (``ganlab.metrics.fidelity.RealStats``: features, mu, sigma).
        labels: each sample's mode by the domain classifier, int64 (``LABELS``).
        modes: the data's mode count (``DataSpec.modes``; 0: none known).
        requested: the labels a class-conditional G was asked for, or None.
        classifier_accuracy: the classifier's held-out accuracy (``CLASSIFIER``).
        samples: the samples (``SAMPLES``).
        kid_subset_size: KID's subset size for these sample counts.
        record: what a metric adds to the run summary beside its values (mode fractions).
    """

    features: Any = None
    logits: Any = None
    real: Any = None
    labels: Any = None
    modes: int = 0
    requested: Any = None
    classifier_accuracy: float | None = None
    samples: Any = None
    kid_subset_size: int = 1000
    record: dict[str, Any] = field(default_factory=dict)


class ImageMetric:
    """A metric of generated images, computed by the scorer (``ganlab.metrics.scorer``).

    A subclass sets ``name`` (what requests it: ``callbacks.metrics.metrics=[fid, <name>]``,
    ``+metrics=<name>`` for a user's own), ``label``, ``goal`` (``min``, ``max`` or None),
    ``fmt``, what it ``needs`` (``NEEDS``) and implements ``compute``; it logs
    ``val/<name>``. One that logs several values lists them in ``logs`` (registered) and
    ``also`` (logged beside them, unranked: ``kid_std``).
    """

    name: str = ""
    label: str = ""
    goal: str | None = None
    fmt: str = ".4g"
    headline: bool = False
    needs: tuple[str, ...] = ()
    also: tuple[str, ...] = ()
    #: computed whenever what it needs is at hand for another metric (no request needed)
    implied: bool = False

    @property
    def logs(self) -> tuple[Metric, ...]:
        return (Metric(f"val/{self.name}", self.label or self.name, self.goal, self.fmt),)

    def names(self, modes: int, conditional: bool) -> set[str]:
        """The names (without ``val/``) it may log, for data of ``modes`` modes and a G
        that is class-conditional or not."""
        return {m.key.removeprefix("val/") for m in self.logs} | set(self.also)

    def compute(self, inputs: Inputs) -> dict[str, float]:
        """Its values (name without ``val/`` -> float) from ``inputs``."""
        raise NotImplementedError
