"""The end of a run: its summary (``summary.json``), the loggers closed, the last lines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger

from ganlab.callbacks.summary import SummaryPart
from ganlab.errors import one_line
from ganlab.metrics.registry import Metric, metric, order


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no inf/nan


def summarize(trainer: pl.Trainer, module: Any, seconds: float) -> dict[str, Any]:
    """The run's summary: status, steps, time, final metrics and what the callbacks and the
    data module add (health flags, metric provenance, files skipped, the stop signal)."""
    module.check_finite()  # divergence after the last logged step counts too
    metrics = {k: _finite(float(v)) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    parts: dict[str, Any] = {"health": {}}
    for part in trainer.callbacks:
        if isinstance(part, SummaryPart):
            parts.update(part.summary(module))
    parts.update(trainer.datamodule.data.summary(module))  # files skipped, ...
    return {
        "status": "completed" if module.status == "running" else module.status,
        "steps": module.g_step,
        **({"diverged_at": module.diverged_at} if module.status == "diverged" else {}),
        "seconds": round(seconds, 2),
        "metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith("val/")},
        **parts,
        "run_dir": str(trainer.default_root_dir),
    }


def finish(trainer: pl.Trainer, summary: dict[str, Any]) -> None:
    """Write ``summary.json``, close the loggers (W&B gets the final values) and print the
    run's last lines."""
    run_dir = Path(trainer.default_root_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for logger in trainer.loggers:
        if summary["status"] == "diverged":
            logger.log_metrics({"diverged": 1.0}, step=summary["steps"])
            logger.save()
        if isinstance(logger, WandbLogger):  # final figures, then close before the next job
            logger.experiment.summary.update({"status": summary["status"], **summary["metrics"]})
            logger.experiment.finish()
    line = f"run dir: {run_dir}\nfinished {summary['steps']} steps in {summary['seconds']:.1f}s"
    line += _console_metrics(summary)
    line += _health_line(summary)
    if summary.get("data", {}).get("skipped_images"):
        line += f"\ndata: skipped {summary['data']['skipped_images']} image(s) that fail to decode"
    if summary["status"] != "completed":
        line += f"\nstatus: {summary['status']} at step {summary['steps']}"
    if "resume" in summary:
        line += f"\ncontinue with: {summary['resume']}"
    print(line, flush=True)


def _health_line(summary: dict[str, Any]) -> str:
    """``health flags at the end: collapse (since step 400); cleared: d_wins (50-3750)``."""
    holding = summary.get("health", {})
    cleared = {f: p for f, p in summary.get("health_history", {}).items() if f not in holding}
    if not holding and not cleared:
        return ""
    parts = [f"{f} (since step {step})" for f, step in holding.items()]
    line = "\nhealth flags at the end: " + (", ".join(parts) or "none")
    if cleared:
        spans = {f: ", ".join(f"{a}-{b}" for a, b in p) for f, p in cleared.items()}
        line += "; cleared: " + ", ".join(f"{f} ({s})" for f, s in spans.items())
    return line


def _console_metrics(summary: dict[str, Any]) -> str:
    """``; FID 12.3, modes 10 (classifier features)``: the final values named and formatted
    by the metric registry, with the features they were computed in."""
    m = summary["metrics"]
    keys = sorted((k for k in m if metric(k).headline), key=order)
    shown = [f"{metric(k).label} {metric(k).format(m[k])}{_floor(m, metric(k))}" for k in keys]
    if not shown:
        return ""
    extractor = summary.get("metrics_provenance", {}).get("extractor")
    return "; " + ", ".join(shown) + (f" ({extractor} features)" if extractor else "")


def _floor(values: dict[str, Any], m: Metric) -> str:
    """`` (floor 0.0008)`` where the metric's real-vs-real floor was logged."""
    if m.floor is None or values.get(m.floor) is None:
        return ""
    return f" (floor {m.format(values[m.floor])})"


def record_failure(run_dir: Path, steps: int, err: Exception, resume: str) -> None:
    """``summary.json`` of a run stopped by a fault it cannot go on from (best effort: a
    full disk may refuse this file too)."""
    summary = {"status": "failed", "reason": one_line(err), "steps": steps, "metrics": {},
               "health": {}, "resume": resume, "run_dir": str(run_dir)}  # fmt: skip
    try:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    except OSError:
        pass
