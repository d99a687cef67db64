"""One registry of the metrics ganlab logs: name, direction and format.

It serves the sweep table, the comparison report, best-checkpoint selection and the
console summary, so a metric's direction ("is lower better?") is stated once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ganlab import diagnostics as diag


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


_METRICS = (
    # image samples (ganlab.metrics.scorer)
    Metric("val/fid", "FID", "min", headline=True),
    Metric("val/kid", "KID", "min", ".3g"),
    Metric("val/is", "IS", "max"),
    Metric("val/precision", "precision", "max", ".3f"),
    Metric("val/recall", "recall", "max", ".3f"),
    Metric("val/density", "density", "max", ".3f"),  # ~1 for real data; > 1 crowds real modes
    Metric("val/coverage", "coverage", "max", ".3f"),
    Metric("val/classifier_acc", "classifier acc", None, ".3f"),  # a property of the data
    Metric("val/class_acc", "class acc", "max", ".3f"),
    # mode coverage (toy mixtures, digits, stacked sets)
    Metric("val/modes", "modes", "max", ".0f", headline=True),
    Metric("val/hq", "HQ %", "max", ".1f", headline=True),
    Metric("val/rkl", "reverse KL", "min", ".3f", headline=True),
    Metric("val/spread", "spread", None, ".3f"),  # samples' spread / the data's (1: as wide)
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
    # image translation (ganlab.callbacks.translation); CycleGAN logs val/<ab|ba>/<metric>
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
