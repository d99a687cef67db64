"""Publish a W&B report spec (``wandb_report.json``) with ``wandb-workspaces``.

``wandb_workspaces.reports.v2`` is imported here only, when a report is published: building
its objects may call the W&B API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganlab.errors import UserError
from ganlab.report.wandb_spec import load_spec


def workspaces() -> Any:
    """``wandb_workspaces.reports.v2``, or a one-line error naming the package."""
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        raise UserError(
            "a W&B report needs wandb-workspaces: pip install 'ganlab[report]'"
        ) from None
    return wr


def _panel(wr: Any, panel: dict[str, Any]) -> Any:
    if panel["type"] == "line":
        return wr.LinePlot(title=panel["title"], x=panel["x"] or "Step", y=panel["y"])
    if panel["type"] == "media":
        return wr.MediaBrowser(title=panel["title"], media_keys=panel["keys"], num_columns=4)
    columns = [
        wr.ParallelCoordinatesPlotColumn(
            metric=wr.Config(c["config"]) if "config" in c else wr.SummaryMetric(c["summary"]),
            display_name=c["label"],
        )
        for c in panel["columns"]
    ]
    return wr.ParallelCoordinatesPlot(title=panel["title"], columns=columns)


def report_objects(spec: dict[str, Any], entity: str) -> Any:
    """The ``wr.Report`` of a spec: one panel grid over the runs of the sweep's group."""
    wr = workspaces()
    project = spec["project"]
    runset = wr.Runset(entity=entity, project=project, **spec["runset"])
    grid = wr.PanelGrid(runsets=[runset], panels=[_panel(wr, p) for p in spec["panels"]])
    return wr.Report(
        entity=entity,
        project=project,
        title=spec["title"],
        description=spec["description"],
        blocks=[grid],
    )


def _entity(spec: dict[str, Any]) -> str:
    entity = spec.get("entity") or os.environ.get("WANDB_ENTITY")
    if entity:
        return entity
    import wandb

    return wandb.Api().default_entity


def publish(path: str | Path) -> str:
    """Save the report of the spec at ``path`` to W&B; returns its URL."""
    spec = load_spec(path)
    workspaces()
    from ganlab.loggers import _has_wandb_key  # imports torch: only once the spec is read

    if not _has_wandb_key():
        raise UserError("publishing a W&B report needs a login: wandb login (or WANDB_API_KEY)")
    report = report_objects(spec, _entity(spec))
    report.save()
    return report.url
