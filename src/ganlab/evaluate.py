"""``python -m ganlab.evaluate ckpt=PATH [metrics=fid,kid,is,pr,modes] [n=10000] ...``:
score a checkpoint and print a table; the values and how they were computed are written as
JSON (default: ``<checkpoint>_metrics.json`` beside it).

What is scored follows what the checkpoint's family can do, through the code the training
callbacks use: a family that samples (``CanSample``) gets the image metrics of its samples
(``ganlab.metrics.scorer``; the toy metrics on points); one that translates
(``CanTranslate``) gets L1, PSNR, SSIM, FID, KID and label preservation of the held-out
test items per direction (``ganlab.metrics.translation``).

Keys: ``n`` samples (the run's evaluation z) or test items translated, ``n_real`` real
images of ``split`` (train or test; default train for samples, test for translations),
``metrics`` (default ``fid,kid,is,pr,modes`` for samples, ``fid,kid`` for translations),
``extractor`` (classifier or inception; ``inception_weights=PATH`` for an offline weights
file), ``ema=false`` for the raw generator, ``device``, ``out``; ``truncation=PSI``
(``truncation_mode=auto|resample|mean``) scores truncated samples, as
``python -m ganlab.sample`` draws them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException

from ganlab.checkpoints import Trained, load_trained, rebuild_data
from ganlab.data.sources import SPLITS
from ganlab.errors import UserError, one_line, run_command
from ganlab.families.protocols import CanSample, CanTranslate
from ganlab.options import at_most, check_device, parse_options
from ganlab.sample import CKPT_HINT, truncation, truncation_fits

MAX_SAMPLES = 200_000  # generated at once for one evaluation
#: the default metrics and split of real images, by what is scored
DEFAULT_METRICS = {"samples": "fid,kid,is,pr,modes", "translations": "fid,kid"}
DEFAULT_SPLIT = {"samples": "train", "translations": "test"}


@dataclass
class EvaluateOptions:
    ckpt: str = field(default="???", metadata={"required": CKPT_HINT})
    metrics: str | None = None  # default: DEFAULT_METRICS of what is scored
    n: int = 10_000
    n_real: int = 10_000
    extractor: str = "classifier"
    split: str | None = None  # default: train for samples, test for translations
    inception_weights: str | None = None
    ema: bool = True
    device: str = "cpu"
    out: str | None = None
    cache_dir: str | None = None
    truncation: float | None = None  # the truncation trick, as in ganlab.sample
    truncation_mode: str = "auto"


def _datamodule(config: Any) -> Any:
    """The run's data module, for its real images (no training batches are drawn)."""
    try:
        datamodule = rebuild_data(config)  # read where the checkpoint says, never created
    except InstantiationException as err:  # its files missing, ...: the cause in one line
        raise UserError(one_line(err)) from None
    datamodule.prepare_data()
    return datamodule


def output_path(opts: EvaluateOptions) -> Path:
    """Where the JSON goes; its folder is made now, so a path that cannot be written fails
    before the metrics are computed, not after."""
    ckpt = Path(opts.ckpt)
    out = Path(opts.out or ckpt.with_name(f"{ckpt.stem}_metrics.json"))
    if out.is_dir():
        raise UserError(f"out={out} is a folder: name the JSON file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"out={out}: cannot make its folder ({err.strerror})") from None
    return out


def _check(opts: EvaluateOptions) -> None:
    """Every option, before the checkpoint is read."""
    from ganlab.metrics.scorer import EXTRACTORS  # the metrics stack: only when it runs

    for key in ("n", "n_real"):
        if getattr(opts, key) < 2:
            raise UserError(f"{key} must be >= 2, got {getattr(opts, key)}")
    at_most(opts.n, MAX_SAMPLES, "n", "samples generated for one evaluation")
    if opts.split is not None and opts.split not in SPLITS:
        raise UserError(f"split={opts.split}: choose one of {', '.join(SPLITS)}")
    if opts.extractor not in EXTRACTORS:
        raise UserError(f"extractor={opts.extractor}: choose one of {', '.join(EXTRACTORS)}")
    check_device(opts.device)
    truncation(opts)


def evaluate(opts: EvaluateOptions) -> dict[str, Any]:
    """Score the checkpoint of ``opts`` by what its family can do; returns the report
    written as JSON."""
    from ganlab.callbacks.needs import SAMPLED_IMAGES, SAMPLED_POINTS, TRANSLATIONS

    _check(opts)
    trained = load_trained(opts.ckpt, ema=opts.ema, device=opts.device)
    scorings = ((SAMPLED_IMAGES, _images), (SAMPLED_POINTS, _points), (TRANSLATIONS, _translations))
    scoring = next((s for needs, s in scorings if needs.met(trained.spec, trained.family)), None)
    if scoring is None:
        raise UserError(
            f"{opts.ckpt}: its family ({trained.family.name}) neither samples nor translates "
            "(ganlab.families.protocols: CanSample, CanTranslate): nothing to evaluate"
        )
    start = time.perf_counter()
    report = {
        "checkpoint": str(opts.ckpt),
        "step": trained.step,
        "generator": "ema" if trained.ema else "raw",
        "truncation": None,
        "mode_fractions": [],
        **scoring(opts, trained),
    }
    return report | {"seconds": round(time.perf_counter() - start, 2)}


def _scorer_options(opts: EvaluateOptions, scored: str) -> dict[str, Any]:
    """The scorer's arguments from ``opts``, with the defaults of what is ``scored``."""
    metrics = opts.metrics if opts.metrics is not None else DEFAULT_METRICS[scored]
    return {
        "n_real": opts.n_real,
        "extractor": opts.extractor,
        "metrics": [m for m in metrics.split(",") if m],
        "real_split": opts.split or DEFAULT_SPLIT[scored],
        "inception_weights": opts.inception_weights,
        "cache_dir": opts.cache_dir,
        "weights_option": "inception_weights",
    }


def _images(opts: EvaluateOptions, trained: Trained) -> dict[str, Any]:
    """The image metrics of ``n`` samples from the run's evaluation z, as ``ImageMetrics``."""
    from ganlab.metrics.registry import register_configured
    from ganlab.metrics.scorer import ImageScorer

    try:
        register_configured(trained.config)  # the run's own metrics (+metrics=...) too
        scorer = ImageScorer(**_scorer_options(opts, "samples"))
    except (InstantiationException, ValueError) as err:
        raise UserError(one_line(err)) from None
    scorer.prepare(_datamodule(trained.config), opts.device)
    samples, truncated = _samples(opts, trained)
    labels = trained.family.fixed_labels(opts.n)
    values = scorer.score(samples, None if labels is None else labels.cpu())
    return {
        "truncation": truncated,
        "metrics": values,
        "mode_fractions": scorer.fractions,
        "provenance": scorer.provenance,
    }


def _points(opts: EvaluateOptions, trained: Trained) -> dict[str, Any]:
    """The toy metrics of ``n`` samples from the run's evaluation z, as ``ToyEvaluator``."""
    samples, truncated = _samples(opts, trained)
    metrics = _datamodule(trained.config).distribution.evaluate(samples)
    return {"truncation": truncated, "metrics": metrics, "provenance": {"n_fake": opts.n}}


def _samples(opts: EvaluateOptions, trained: Trained) -> tuple[Any, dict[str, Any] | None]:
    """``n`` samples from the run's evaluation z (truncated as ``opts`` ask), and the
    truncation applied (None: none)."""
    family: CanSample = trained.family
    trunc = truncation(opts)
    mode = truncation_fits(trained, trunc)
    samples = family.generate(opts.n, z=family.fixed_z(opts.n, truncation=trunc)).float()
    return samples, None if trunc is None else {"psi": trunc.psi, "mode": mode}


def _translations(opts: EvaluateOptions, trained: Trained) -> dict[str, Any]:
    """The translation metrics of the first ``n`` test items, per direction, as
    ``TranslationMetrics``."""
    from ganlab.metrics.translation import TranslationScorer

    if opts.truncation is not None:
        raise UserError("truncation=... truncates a latent; this checkpoint's model translates")
    try:
        scorer = TranslationScorer(**_scorer_options(opts, "translations"))
    except ValueError as err:
        raise UserError(str(err)) from None
    family: CanTranslate = trained.family
    translations = family.translations(_datamodule(trained.config), opts.n)
    values = scorer.score(translations, opts.device)
    return {"metrics": values, "provenance": scorer.provenance()}


def print_table(report: dict[str, Any]) -> None:
    print(f"{report['checkpoint']} (step {report['step']}, {report['generator']} generator)")
    for key, value in report["metrics"].items():
        if not key.startswith("class_frac/"):
            print(f"  {key:<16}{value:>12.5g}")
    fractions = report["mode_fractions"]
    if 0 < len(fractions) <= 10:  # 1,000 stacked modes: in the JSON only
        print(
            f"  {'class fractions':<16}" + " ".join(f"{c}:{p:.3f}" for c, p in enumerate(fractions))
        )
    p = report["provenance"]
    if "extractor" in p:
        print(
            f"  features: {p.get('extractor')}; {p.get('n_fake')} generated vs {p.get('n_real')}"
            f" real ({p.get('real_split')}); {report['seconds']:.1f}s"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one ``error: ...`` line and exit 2 for a mistake."""
    argv = sys.argv[1:] if argv is None else argv
    opts = run_command(lambda: parse_options(EvaluateOptions, argv, usage=__doc__))

    def work() -> tuple[Path, dict]:
        out, report = output_path(opts), evaluate(opts)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return out, report

    out, report = run_command(work, opts.out)
    print_table(report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
