"""``report.md``: the report's tables, and links to its pictures, to paste into a README
or a pull request."""

from __future__ import annotations

import os
from pathlib import Path

from ganlab.report.build import FILES, Report, curve_file
from ganlab.report.table import to_markdown

PER_ROW = 4  # sample pictures side by side


def _link(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(path, out_dir)).as_posix()


def _pictures(report: Report, out_dir: Path) -> list[str]:
    lines = []
    for start in range(0, len(report.pictures), PER_ROW):
        chunk = report.pictures[start : start + PER_ROW]
        captions = [f"{report.label(p.job)}, {p.caption}" for p in chunk]
        images = [
            f"![samples of job {p.job.name}]({_link(p.path, out_dir)})" if p.path else "-"
            for p in chunk
        ]
        lines += ["| " + " | ".join(captions) + " |", "|" + "---|" * len(chunk)]
        lines += ["| " + " | ".join(images) + " |", ""]
    return lines


def render_markdown(report: Report, out_dir: Path) -> str:
    """The Markdown page; pictures are linked relative to ``out_dir``."""
    lines = [f"# ganlab sweep `{report.sweep_dir.name}`", "", f"`{report.sweep_dir}`", ""]
    lines += [*(f"{n}  " for n in report.notes), ""]
    lines += ["## Jobs", "", "Best values in bold; jobs that did not complete in italics.", ""]
    lines += [to_markdown(report.jobs_table), ""]
    if report.seeds_table is not None:
        lines += ["## Seeds aggregated", "", "Mean ± sample std over the completed seeds.", ""]
        lines += [to_markdown(report.seeds_table), ""]
    if report.curves:
        lines += ["## Curves", ""]
        lines += [f"![{key}]({FILES}/{curve_file(key)})" for key in report.curves] + [""]
    if report.pictures:
        lines += ["## Samples", "", "The last samples of each job, from the run's fixed z.", ""]
        lines += _pictures(report, out_dir)
    return "\n".join(lines).rstrip() + "\n"
