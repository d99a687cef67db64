"""A Hydra callback that ends a multirun with a table of its jobs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
COLUMNS = ("val/fid", "val/modes", "val/hq", "val/rkl", "val/mean", "val/std")


class SweepSummary(Callback):
    """After a multirun: one line per job (overrides, status, steps, final metrics), also
    written to ``<sweep dir>/sweep_summary.json``. Diverged jobs are named at the end."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = []
        for path in sorted(sweep_dir.glob("*/summary.json"), key=lambda p: p.parent.name):
            summary = json.loads(path.read_text())
            overrides_file = path.parent / ".hydra" / "overrides.yaml"
            overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
            jobs.append({"job": path.parent.name, "overrides": list(overrides), **summary})
        if not jobs:
            return
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(jobs, indent=2) + "\n")
        keys = [k for k in COLUMNS if any(k in j["metrics"] for j in jobs)]
        lines = [f"sweep {sweep_dir}: {len(jobs)} jobs"]
        for j in jobs:
            values = " ".join(f"{k[4:]}={_fmt(j['metrics'].get(k))}" for k in keys)
            lines.append(f"  {j['job']:>3} {j['status']:<11} {' '.join(j['overrides'])}  {values}")
        diverged = [j["job"] for j in jobs if j["status"] == "diverged"]
        if diverged:
            lines.append(f"diverged: job(s) {', '.join(diverged)}")
        log.info("\n".join(lines))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
