"""``python -m ganlab.evaluate ckpt=PATH [metrics=fid,kid,is,pr,modes] [n=10000] ...``:
score a checkpoint's generator and print a table; the values and how they were computed
are written as JSON (default: ``<checkpoint>_metrics.json`` beside it).

Keys: ``n`` samples (the run's evaluation z), ``n_real`` real images of ``split`` (train or
test), ``extractor`` (classifier or inception; ``inception_weights=PATH`` for an offline
weights file), ``ema=false`` for the raw generator, ``device``, ``out``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch

from ganlab.checkpoints import load_generator
from ganlab.errors import UserError
from ganlab.metrics.scorer import ImageScorer
from ganlab.sample import int_arg, parse_args

DEFAULTS = {
    "ckpt": None, "metrics": "fid,kid,is,pr,modes", "n": "10000", "n_real": "10000",
    "extractor": "classifier", "split": "train", "inception_weights": None, "ema": "true",
    "device": "cpu", "out": None, "cache_dir": None,
}  # fmt: skip


def _datamodule(config: Any) -> Any:
    """The run's data module, for its real images (no training batches are drawn)."""
    datamodule = hydra.utils.instantiate(config.data, steps=1, batches_per_step=1)
    if not hasattr(datamodule, "image_shape"):
        raise UserError("evaluate scores image models; this checkpoint is of a vector model")
    datamodule.prepare_data()
    return datamodule


def evaluate(args: dict[str, str | None]) -> dict[str, Any]:
    """Score the checkpoint in ``args``; returns the report written as JSON."""
    g = load_generator(args["ckpt"], ema=args["ema"] != "false", device=args["device"])
    n = int_arg(args, "n", 2)
    try:
        scorer = ImageScorer(
            n_real=int_arg(args, "n_real", 2),
            extractor=args["extractor"],
            metrics=[m for m in args["metrics"].split(",") if m],
            real_split=args["split"],
            inception_weights=args["inception_weights"],
            cache_dir=args["cache_dir"],
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    start = time.perf_counter()
    scorer.prepare(_datamodule(g.config), args["device"])
    labels = torch.arange(n, device=g.device) % g.num_classes if g.num_classes else None
    values = scorer.score(g(g.z(n), labels).float(), None if labels is None else labels.cpu())
    return {
        "checkpoint": str(args["ckpt"]),
        "step": g.step,
        "generator": "ema" if g.ema else "raw",
        "metrics": values,
        "mode_fractions": scorer.fractions,
        "provenance": scorer.provenance,
        "seconds": round(time.perf_counter() - start, 2),
    }


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
    if p:
        print(
            f"  features: {p.get('extractor')}; {p.get('n_fake')} generated vs {p.get('n_real')}"
            f" real ({p.get('real_split')}); {report['seconds']:.1f}s"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one ``error: ...`` line and exit 2 for a mistake."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv, DEFAULTS)
        report = evaluate(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    ckpt = Path(args["ckpt"])
    out = Path(args["out"] or ckpt.with_name(f"{ckpt.stem}_metrics.json"))
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
