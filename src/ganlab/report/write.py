"""Write a sweep's ``report.html`` and ``report.md`` from its ``Report`` (``build.collect``)."""

from __future__ import annotations

import time
from pathlib import Path

from ganlab.io import atomic_path
from ganlab.report.build import FILES, HTML, MARKDOWN, collect, curve_file
from ganlab.report.html import render_html
from ganlab.report.markdown import render_markdown


def write_report(sweep_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (self-contained), ``report.md`` and the curves it links
    (``report_files/``) into ``out`` (default: the sweep directory); returns the HTML path."""
    report = collect(sweep_dir)
    out_dir = Path(out).resolve() if out else report.sweep_dir
    (out_dir / FILES).mkdir(parents=True, exist_ok=True)
    for key, data in report.curves.items():
        _write(out_dir / FILES / curve_file(key), data)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    _write(out_dir / MARKDOWN, render_markdown(report, out_dir).encode())
    return _write(out_dir / HTML, render_html(report, stamp).encode())


def _write(path: Path, data: bytes) -> Path:
    """Write atomically (``ganlab.io.atomic_path``): a reader never sees half a page."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
