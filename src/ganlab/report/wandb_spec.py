"""The W&B Report of a sweep, as a plain JSON spec built from what its runs logged.

``build_spec`` reads the jobs' W&B run files (offline: no network); ``publish`` turns a spec
into ``wandb_workspaces`` objects and saves them. Those objects are built only at publish
time: a ``wr.Report`` without an entity asks the W&B API for one, and a ``Runset`` with an
entity and a project looks the project up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganlab.errors import UserError
from ganlab.report.jobs import Job, load_jobs, optimized_metric, varying_keys
from ganlab.report.wandb_runs import WandbRun, read_job_run

FORMAT = "ganlab-wandb-report/1"
SPEC_FILE = "wandb_report.json"
STEP = "trainer/global_step"  # Lightning's step metric: ganlab logs its G step there
LOSSES = ("train/d_loss", "train/g_loss")
MEDIA = ("samples/grid", "samples")  # image grids; scatter plots of points


def _runs(jobs: list[Job], sweep_dir: Path) -> list[tuple[Job, WandbRun]]:
    runs = [(job, read_job_run(job.path)) for job in jobs]
    runs = [(job, run) for job, run in runs if run is not None]
    if not runs:
        raise UserError(f"no W&B runs in {sweep_dir}/*/wandb (the sweep ran without logger=wandb?)")
    groups = sorted({run.group for _, run in runs})
    if len(groups) != 1 or not groups[0]:
        raise UserError(f"the W&B runs of {sweep_dir} are not in one group: {groups}")
    return runs


def config_key(override: str, runs: list[WandbRun]) -> str | None:
    """The logged config key behind a swept override: the key itself for a value
    (``optim.d.lr``), the choice's ``_target_`` (or first differing value) for a config
    group (``loss`` -> ``loss._target_``); None when the runs' configs do not show it."""
    key = override.lstrip("+~").replace("/", ".")
    if all(key in run.config for run in runs):
        return key
    under = sorted({k for run in runs for k in run.config if k.startswith(key + ".")})
    differ = [k for k in under if len({json.dumps(r.config.get(k)) for r in runs}) > 1]
    if f"{key}._target_" in differ:
        return f"{key}._target_"
    return differ[0] if differ else None


def _panels(jobs: list[Job], runs: list[WandbRun]) -> list[dict[str, Any]]:
    history = set.union(*(run.history for run in runs))
    media = set.union(*(run.media for run in runs))
    summary = set.union(*(run.summary for run in runs))
    x = STEP if STEP in history else None
    optimized = optimized_metric(jobs)
    panels = []
    if optimized in history:
        panels.append({"type": "line", "title": optimized, "x": x, "y": [optimized]})
    losses = [k for k in LOSSES if k in history]
    if losses:
        panels.append({"type": "line", "title": "losses", "x": x, "y": losses})
    shown = [k for k in MEDIA if k in media][:1]
    if shown:
        panels.append({"type": "media", "title": "samples", "keys": shown})
    columns = []
    for override in varying_keys(jobs):
        key = config_key(override, runs)
        if key is not None:
            columns.append({"config": key, "label": override.lstrip("+~")})
    if columns and optimized in summary:
        columns.append({"summary": optimized, "label": optimized})
        panels.append({"type": "parallel", "title": "swept values", "columns": columns})
    return panels


def build_spec(sweep_dir: str | Path) -> dict[str, Any]:
    """The report spec of a sweep: its runs (one group), and panels naming only keys the
    runs logged."""
    sweep_dir = Path(sweep_dir).resolve()
    jobs = load_jobs(sweep_dir)
    pairs = _runs(jobs, sweep_dir)
    runs = [run for _, run in pairs]
    group, project = runs[0].group, runs[0].project
    entities = {run.entity for run in runs if run.entity}
    return {
        "format": FORMAT,
        "title": f"ganlab sweep {group}",
        "description": f"{len(jobs)} jobs of the sweep in {sweep_dir}",
        "entity": entities.pop() if len(entities) == 1 else None,
        "project": project,
        "group": group,
        "runset": {"name": f"sweep {group}", "filters": f"Metric('Group') == {group!r}"},
        "panels": _panels(jobs, runs),
        "runs": [
            {
                "job": job.name,
                "id": run.id,
                "name": run.name,
                "offline": run.offline,
                "dirs": run.run_dirs,
            }
            for job, run in pairs
        ],
    }


def write_spec(spec: dict[str, Any], sweep_dir: str | Path) -> Path:
    """Write the spec as ``<sweep dir>/wandb_report.json``."""
    path = Path(sweep_dir) / SPEC_FILE
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path


def load_spec(path: str | Path) -> dict[str, Any]:
    """A spec written by ``write_spec``; a one-line ``UserError`` for anything else."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the report spec {path}: {err}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise UserError(f"{path} is not a ganlab W&B report spec (format {FORMAT})")
    return spec


def sync_command(spec: dict[str, Any]) -> str:
    """The ``wandb sync`` command that uploads the spec's offline runs."""
    dirs = [d for run in spec["runs"] if run["offline"] for d in run["dirs"]]
    return "wandb sync " + " ".join(dirs)
