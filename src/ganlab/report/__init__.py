"""The comparison report of a sweep: ``python -m ganlab.report SWEEP_DIR``.

``report.html`` (self-contained: jobs table, seeds aggregated, curves, last samples) and
``report.md`` are written into the sweep directory; ``--wandb`` also builds a W&B Report.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    # imported on first use: ``python -m ganlab.report --help`` starts without matplotlib
    if name == "write_report":
        from ganlab.report.write import write_report

        return write_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
