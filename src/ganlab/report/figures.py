"""The pictures of a report: metric curves overlaid across jobs (from each job's
``metrics.csv``) and each job's last sample grid or scatter plot."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ganlab import diagnostics as diag
from ganlab.metrics.registry import metric
from ganlab.report.jobs import Job

# what the curves show, after the optimized metric: quality, then the two players
GRAD_NORMS = (diag.logged(diag.GRAD_NORM_G), diag.logged(diag.GRAD_NORM_D))
CURVES = (
    "val/fid",
    "val/modes",
    "val/hq",
    diag.logged(diag.D_LOSS),
    diag.logged(diag.G_LOSS),
    *GRAD_NORMS,
)
LOG_SCALE = GRAD_NORMS  # a vanishing gradient spans decades

Series = dict[str, tuple[list[int], list[float]]]  # key -> (steps, values)


def read_series(path: Path) -> Series:
    """The logged values of a Lightning ``metrics.csv``, by key, against its ``step``
    column (empty cells and non-finite values skipped)."""
    series: Series = {}
    if not path.is_file():
        return series
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step = row.pop("step", "")
            if not step:
                continue
            for key, text in row.items():
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(value):
                    steps, values = series.setdefault(key, ([], []))
                    steps.append(int(float(step)))
                    values.append(value)
    return series


def curve_keys(optimized: str | None, logged: list[Series]) -> list[str]:
    """The curves to draw: the optimized metric, then ``CURVES``, as far as any job logged
    them."""
    keys = [k for k in dict.fromkeys([optimized, *CURVES]) if k]
    return [k for k in keys if any(k in s for s in logged)]


def color(i: int, n: int) -> tuple[float, float, float, float]:
    """The color of job ``i`` of ``n``, the same in every figure."""
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"](i % 20)


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


@dataclass
class Line:
    """One job's curve: legend label, color, status (a line that did not complete ends
    in a cross)."""

    label: str
    color: tuple[float, float, float, float]
    status: str
    steps: list[int]
    values: list[float]


def curve_figure(key: str, lines: list[Line], optimized: bool = False) -> bytes:
    """One metric over G steps, one line per job, as PNG bytes."""
    spec = metric(key)
    fig = Figure(figsize=(5.6, 3.0))
    ax = fig.add_subplot()
    for line in lines:
        marker = "o" if len(line.steps) < 30 else None  # sparse (evaluations): show points
        ax.plot(line.steps, line.values, color=line.color, lw=1.2, marker=marker, ms=3,
                label=line.label)  # fmt: skip
        if line.status != "completed" and line.steps:
            ax.plot(line.steps[-1:], line.values[-1:], "x", color=line.color, ms=8, mew=2)
    if key in LOG_SCALE and all(v > 0 for line in lines for v in line.values):
        ax.set_yscale("log")
    goal = {"min": ", lower is better", "max": ", higher is better"}.get(spec.goal, "")
    ax.set_title(f"{spec.label} ({key}{goal})" + (" - optimized" if optimized else ""))
    ax.set_xlabel("G step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), ncol=1 + len(lines) // 16)
    fig.tight_layout()
    return png(fig)


def step_of(path: Path) -> int:
    """The G step in a picture's file name (``grid_0000400.png`` -> 400)."""
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def last_picture(job: Job) -> Path | None:
    """The job's last sample grid (images) or scatter plot (points), if it drew one."""
    for pattern in ("samples/grid_*.png", "plots/step_*.png"):
        pictures = sorted(job.path.glob(pattern), key=step_of)
        if pictures:
            return pictures[-1]
    return None
