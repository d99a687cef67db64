"""The jobs table of a sweep (and its seeds-aggregated form), as cells with the best value of
each metric marked; rendered as console text, Markdown or HTML.

Columns and their order, labels, directions and formats come from the metric registry
(``ganlab.metrics.registry``): registered ``val/*`` metrics are shown, the optimized one
first. Only completed jobs compete for "best": a diverged job's last values are not final.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ganlab.metrics.registry import METRICS, Metric, metric
from ganlab.report.jobs import (
    Job,
    count_statuses,
    is_seed,
    optimized_metric,
    seed_groups,
    varying_keys,
)

ARROW = {"min": " ↓", "max": " ↑", None: ""}


@dataclass
class Cell:
    """A table cell: its text, a sort key (number or text; None sorts last), best mark."""

    text: str
    sort: float | str | None = None
    best: bool = False
    note: str = ""  # a longer explanation (the HTML shows it on hover)


@dataclass
class Table:
    """Rows of cells under a header; ``status`` marks each row (completed, diverged, ...)."""

    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    status: list[str] = field(default_factory=list)


def metric_keys(jobs: list[Job]) -> list[str]:
    """The registered ``val/*`` metrics any job reported, the optimized metric first."""
    present = {k for job in jobs for k in job.metrics}
    keys = [k for k in METRICS if k.startswith("val/") and k in present]
    first = optimized_metric(jobs)
    if first in present:
        keys = [first] + [k for k in keys if k != first]
    return keys


def duration(seconds: float | None) -> str:
    """``12.3 s``, ``4.5 min``, ``2.1 h``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _health(flags: dict[str, int], history: dict[str, list] | None = None) -> Cell:
    """The flags that hold at the end (``collapse@400``), then those that cleared, in
    parentheses with their periods (``(d_wins 50-3750)``)."""
    text = " ".join(f"{flag}@{step}" for flag, step in flags.items())
    cleared = [
        f"({flag} " + ",".join(f"{a}-{b}" for a, b in periods) + ")"
        for flag, periods in (history or {}).items()
        if flag not in flags
    ]
    text = " ".join(filter(None, [text, *cleared]))
    return Cell(text or "-", text or None)


def _mark_best(table: Table, column: int, spec: Metric, eligible: list[bool]) -> None:
    values = [
        row[column].sort if ok else None for row, ok in zip(table.rows, eligible, strict=True)
    ]
    best = spec.best([v if isinstance(v, float) else None for v in values])
    for row, value in zip(table.rows, values, strict=True):
        row[column].best = best is not None and value == best


def job_table(jobs: list[Job]) -> Table:
    """One row per job: varying overrides, status, steps, time, final metrics, health."""
    keys, metrics = varying_keys(jobs), metric_keys(jobs)
    header = ["job", *keys, "status", "steps", "time"]
    header += [metric(k).label + ARROW[metric(k).goal] for k in metrics] + ["health"]
    table = Table(header)
    for job in jobs:
        row = [Cell(job.name, int(job.name))]
        row += [Cell(job.overrides.get(k, "-"), job.overrides.get(k)) for k in keys]
        row.append(Cell(job.status, job.status, note=job.reason or ""))
        steps = job.summary.get("steps")
        row += [Cell("-" if steps is None else str(steps), steps)]
        row += [Cell(duration(job.summary.get("seconds")), job.summary.get("seconds"))]
        for k in metrics:
            value = job.metrics.get(k)
            row.append(Cell(metric(k).format(value), None if value is None else float(value)))
        row.append(_health(job.health, job.summary.get("health_history")))
        table.rows.append(row)
        table.status.append(job.status)
    first = len(header) - len(metrics) - 1
    for i, k in enumerate(metrics):
        _mark_best(table, first + i, metric(k), [j.completed for j in jobs])
    return table


def _mean_std(spec: Metric, mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    fmt = ".1f" if spec.fmt.endswith("0f") else spec.fmt  # a mean of counts has a fraction
    text = format(mean, fmt)
    return text if std is None else f"{text} ± {std:.2g}"


def seed_table(jobs: list[Job]) -> Table | None:
    """One row per group of jobs that differ only in ``seed``: mean ± sample std and n over
    its completed jobs; None when no two jobs differ only in their seed."""
    groups = seed_groups(jobs)
    if not groups:
        return None
    keys = [k for k in varying_keys(jobs) if not is_seed(k)]
    metrics = metric_keys(jobs)
    header = [*keys, "jobs", "n", "status"]
    header += [metric(k).label + ARROW[metric(k).goal] for k in metrics]
    table = Table(header)
    for group in groups:
        row = [Cell(group.overrides.get(k, "-"), group.overrides.get(k)) for k in keys]
        row.append(Cell(" ".join(j.name for j in group.jobs), int(group.jobs[0].name)))
        row.append(Cell(str(len(group.completed)), len(group.completed)))
        status = count_statuses(group.jobs)
        row.append(Cell(status, status))
        for k in metrics:
            mean, std, n = group.mean_std(k)
            text = _mean_std(metric(k), mean, std)
            text += f" (n={n})" if 0 < n < len(group.completed) else ""
            row.append(Cell(text, mean))
        table.rows.append(row)
        table.status.append("completed" if len(group.completed) == len(group.jobs) else status)
    first = len(header) - len(metrics)
    for i, k in enumerate(metrics):
        _mark_best(table, first + i, metric(k), [bool(g.completed) for g in groups])
    return table


def _texts(table: Table, best: str) -> list[list[str]]:
    return [[c.text + (best if c.best else "") for c in row] for row in table.rows]


def to_text(table: Table) -> str:
    """Aligned console columns; the best value of a metric is followed by ``*``."""
    rows = [table.header, *_texts(table, "*")]
    widths = [max(len(r[i]) for r in rows) for i in range(len(table.header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _md_cell(cell: Cell) -> str:
    text = f"{cell.text}: {cell.note}" if cell.note else cell.text
    text = text.replace("|", "\\|")
    return f"**{text}**" if cell.best else text


def to_markdown(table: Table) -> str:
    """A GitHub Markdown table; best values in bold, jobs that did not complete in italics."""
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    for row, status in zip(table.rows, table.status, strict=True):
        cells = [_md_cell(c) for c in row]
        if status != "completed":
            cells = [f"_{c}_" if c not in ("-", "") else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
