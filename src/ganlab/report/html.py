"""``report.html``: one self-contained page (pictures as data URIs, a few lines of inline
JavaScript to sort the tables), to open offline, mail or attach."""

from __future__ import annotations

import base64
from html import escape

from ganlab.report.build import Report
from ganlab.report.table import Table

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[data-dir=up]::after { content: " \\25B2"; } th[data-dir=down]::after { content: " \\25BC"; }
td.best { font-weight: bold; background: #d9f2d9; }
tr.failed td { background: #fde2e2; } tr.failed td.status { font-weight: bold; color: #a00; }
tr.failed td.best { background: #fde2e2; }
.meta { color: #555; } .hint { color: #666; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; padding: 6px; border: 1px solid #ddd; background: #fff; }
figure.failed { border: 2px solid #c00; }
figure img.sample { width: 300px; display: block; }
figure img.pixels { image-rendering: pixelated; }
figcaption { font-size: 12px; max-width: 300px; }
div.none { width: 300px; height: 120px; display: flex; align-items: center;
  justify-content: center; color: #a00; background: #fafafa; }
"""

# sort a table by the clicked column: numbers by value, text alphabetically, empty cells last
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.dataset.dir !== "up";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = up ? "up" : "down";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        if (x === undefined || y === undefined) { return (x === undefined) - (y === undefined); }
        var nx = Number(x), ny = Number(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(table: Table, status_column: int | None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    rows = []
    for row, status in zip(table.rows, table.status, strict=True):
        cells = []
        for i, cell in enumerate(row):
            classes = ["best"] * cell.best + ["status"] * (i == status_column)
            attrs = f' class="{" ".join(classes)}"' if classes else ""
            attrs += "" if cell.sort is None else f' data-v="{escape(str(cell.sort))}"'
            attrs += f' title="{escape(cell.note)}"' if cell.note else ""
            text = escape(cell.text) + (f"<br><small>{escape(cell.note)}</small>" * bool(cell.note))
            cells.append(f"<td{attrs}>{text}</td>")
        failed = ' class="failed"' if status != "completed" else ""
        rows.append(f"<tr{failed}>{''.join(cells)}</tr>")
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _curves(report: Report) -> str:
    if not report.curves:
        return "<p>No metrics.csv in the job folders (the sweep ran with logger=none?).</p>"
    figures = [
        f'<figure><img src="{data_uri(png)}" alt="curves of {escape(key)}"></figure>'
        for key, png in report.curves.items()
    ]
    hint = "Each job's logged values over G steps; a cross ends a job that did not complete."
    return f'<p class="hint">{hint}</p><div class="grid">{"".join(figures)}</div>'


def _pictures(report: Report) -> str:
    if not report.pictures:
        return "<p>No sample grids or plots in the job folders.</p>"
    figures = []
    for pic in report.pictures:
        caption = escape(f"{report.label(pic.job)}, {pic.caption}")
        if pic.path is None:
            figures.append(f'<figure class="failed"><div class="none">no samples</div>'
                           f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip
            continue
        kind = "sample pixels" if pic.path.parent.name == "samples" else "sample"
        figures.append(
            f'<figure{" class=failed" * (not pic.job.completed)}><img class="{kind}" '
            f'src="{data_uri(pic.path.read_bytes())}" alt="samples of job {escape(pic.job.name)}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    hint = (
        "The last sample grid (images) or plot (points) of every job, drawn from the run's "
        "fixed z: jobs with the same seed share it, so the pictures compare like for like."
    )
    return f'<p class="hint">{hint}</p><div class="grid">{"".join(figures)}</div>'


def render_html(report: Report, stamp: str) -> str:
    """The whole page."""
    title = f"ganlab sweep {report.sweep_dir.name}"
    notes = "".join(f'<p class="meta">{escape(n)}</p>' for n in report.notes)
    status_col = report.jobs_table.header.index("status")
    parts = [
        f"<h1>{escape(title)}</h1><p class=meta><code>{escape(str(report.sweep_dir))}</code>"
        f" &middot; written {escape(stamp)} by <code>python -m ganlab.report</code></p>{notes}",
        "<h2>Jobs</h2><p class=hint>Click a column to sort. Bold green: the best value among "
        "the completed jobs. Red rows: jobs that did not complete (why, when known, is under "
        "their status).</p>",
        _table(report.jobs_table, status_col),
    ]
    if report.seeds_table is not None:
        parts += [
            "<h2>Seeds aggregated</h2><p class=hint>Jobs that differ only in their seed: mean "
            "&plusmn; sample standard deviation over the completed ones (n).</p>",
            _table(report.seeds_table, report.seeds_table.header.index("status")),
        ]
    parts += ["<h2>Curves</h2>", _curves(report), "<h2>Samples</h2>", _pictures(report)]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'
        f"<style>{STYLE}</style></head><body>\n{chr(10).join(parts)}\n"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
