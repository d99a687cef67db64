"""A Hydra callback that ends a multirun with a table of its jobs and a comparison report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.errors import UserError
from ganlab.report.jobs import load_jobs
from ganlab.report.table import job_table, to_text

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """After a multirun: a table of its jobs (varying overrides, status, steps, time, final
    metrics with the best marked ``*``, health flags), also written to
    ``<sweep dir>/sweep_summary.json``; jobs that did not complete are named at the end. Then
    the comparison report (``report.html``, ``report.md``), whose path is the last line."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            jobs = load_jobs(sweep_dir)
        except UserError:  # no job got as far as its folder
            return
        summary = [job.as_dict() for job in jobs]
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        lines = [f"sweep {sweep_dir}: {len(jobs)} jobs", to_text(job_table(jobs))]
        for status in ("diverged", "interrupted", "invalid", "missing"):
            names = [job.name for job in jobs if job.status == status]
            if names:
                lines.append(f"{status}: job(s) {', '.join(names)}")
        log.info("\n".join(lines))
        path = write_report_safely(sweep_dir)
        if path is not None:
            print(f"report: {path}", flush=True)


def write_report_safely(sweep_dir: Path) -> Path | None:
    """The report of ``sweep_dir``, or None with one warning: a report that fails must not
    take the sweep's summary with it."""
    try:
        from ganlab.report import write_report

        return write_report(sweep_dir)
    except Exception as err:  # noqa: BLE001 - any failure is reported, none is raised
        message = str(err).splitlines()[0] if str(err) else ""
        log.warning("report: not written (%s: %s)", type(err).__name__, message)
        return None
