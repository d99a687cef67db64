"""Collect a sweep's jobs, tables, curves and pictures into a ``Report`` (what the page shows;
``ganlab.report.write`` renders and writes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from ganlab.metrics.registry import metric
from ganlab.report import figures
from ganlab.report.jobs import Job, count_statuses, load_jobs, optimized_metric, varying_keys
from ganlab.report.table import Table, job_table, seed_table

HTML, MARKDOWN, FILES = "report.html", "report.md", "report_files"


@dataclass
class Picture:
    """A job's last sample grid or scatter plot (None: the job drew none)."""

    job: Job
    path: Path | None
    step: int | None

    @property
    def caption(self) -> str:
        """``step <n>`` (or ``no samples``), then the status of a job that did not complete."""
        status = "" if self.job.completed else f", {self.job.status}"
        return (f"step {self.step}" if self.path else "no samples") + status


@dataclass
class Report:
    """Everything a report page shows, collected once for the HTML and the Markdown."""

    sweep_dir: Path
    jobs: list[Job]
    keys: list[str]  # the overrides that vary
    optimized: str | None
    jobs_table: Table
    seeds_table: Table | None
    curves: dict[str, bytes] = field(default_factory=dict)  # metric key -> PNG
    pictures: list[Picture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines under the title

    def label(self, job: Job) -> str:
        return job.label(self.keys)


def _optuna_note(sweep_dir: Path) -> list[str]:
    """The best trial of an Optuna sweep, from its ``optimization_results.yaml``."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return []
    results = OmegaConf.to_container(OmegaConf.load(path))
    params = " ".join(f"{k}={v}" for k, v in (results.get("best_params") or {}).items())
    return [f"Optuna: best value {results.get('best_value')} with {params}"]


def _status_note(jobs: list[Job], optimized: str | None) -> str:
    line = f"{len(jobs)} jobs: {count_statuses(jobs)}"
    if optimized:
        goal = {"min": "lower is better", "max": "higher is better"}.get(metric(optimized).goal)
        line += f"; optimized metric {optimized}" + (f" ({goal})" if goal else "")
    return line


def _curves(report: Report) -> dict[str, bytes]:
    logged = [figures.read_series(job.path / "metrics.csv") for job in report.jobs]
    curves = {}
    for key in figures.curve_keys(report.optimized, logged):
        lines = [
            figures.Line(
                report.label(job), figures.color(i, len(report.jobs)), job.status, *series[key]
            )
            for i, (job, series) in enumerate(zip(report.jobs, logged, strict=True))
            if key in series
        ]
        curves[key] = figures.curve_figure(key, lines, optimized=key == report.optimized)
    return curves


def collect(sweep_dir: str | Path) -> Report:
    """Read a sweep directory into a ``Report``."""
    sweep_dir = Path(sweep_dir).resolve()
    jobs = load_jobs(sweep_dir)
    optimized = optimized_metric(jobs)
    report = Report(
        sweep_dir, jobs, varying_keys(jobs), optimized, job_table(jobs), seed_table(jobs)
    )
    report.notes = [_status_note(jobs, optimized), *_optuna_note(sweep_dir)]
    report.curves = _curves(report)
    pictures = [(job, figures.last_picture(job)) for job in jobs]
    if any(path for _, path in pictures):  # every job, those without samples too
        report.pictures = [Picture(j, p, p and figures.step_of(p)) for j, p in pictures]
    return report


def curve_file(key: str) -> str:
    """The file name of a curve beside the Markdown (``val/fid`` -> ``curve_val_fid.png``)."""
    return "curve_" + key.replace("/", "_") + ".png"
