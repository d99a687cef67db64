"""The comparison report of a sweep: ``python -m ganlab.report SWEEP_DIR``.

``report.html`` (self-contained: jobs table, seeds aggregated, curves, last samples) and
``report.md`` are written into the sweep directory; ``--wandb`` also builds a W&B Report.
"""

from ganlab.report.build import write_report

__all__ = ["write_report"]
