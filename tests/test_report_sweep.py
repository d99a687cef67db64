"""The comparison report of real tiny sweeps, run through the command line: written at the
end of the multirun, opened in headless Chromium, and its W&B Report spec checked offline
against what the runs logged."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from wandb_workspaces import expr

from conftest import run_cli
from ganlab.report.__main__ import main
from ganlab.report.publish import report_objects
from ganlab.report.wandb_runs import read_job_run
from ganlab.report.wandb_spec import build_spec

CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by `make setup`
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
IMAGE_SWEEP = [
    "model=dcgan", "data=digits", "data.image_size=16", "model.generator.width=8",
    "model.discriminator.width=8", "steps=10", "eval_every=10", "sample_every=10",
    "callbacks.metrics.n_samples=200", "callbacks.metrics.n_real=300", "logger=csv",
]  # fmt: skip


def _sweep(root: Path, name: str, *overrides: str) -> tuple[Path, subprocess.CompletedProcess]:
    sweep = root / name
    result = run_cli("-m", *overrides, "threads=1", f"hydra.sweep.dir={sweep}", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep, result


@pytest.fixture(scope="module")
def ring_sweep(tmp_path_factory):
    """4 jobs on ring8 (2 losses x 2 seeds) logged to W&B offline and CSV."""
    root = tmp_path_factory.mktemp("ring")
    return _sweep(root, "ring_sweep", "loss=nonsaturating,hinge", "seed=0,1", "steps=40",
                  "eval_every=20")  # fmt: skip


def open_in_chromium(html: Path, sort_by: str | None = None) -> dict:
    """Open ``html`` in headless Chromium: its images' natural widths, console errors, a
    full-page screenshot, and (after clicking header ``sort_by``) that column's values."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), (
        "no Chromium: `make setup` installs it (apt-get install chromium)"
    )
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.as_uri(), wait_until="load")
        seen = {
            "images": page.evaluate("Array.from(document.images, i => [i.alt, i.naturalWidth])")
        }
        seen["screenshot"] = page.screenshot(full_page=True)
        if sort_by:
            table = page.locator("table").first
            column = table.locator("th").all_inner_texts().index(sort_by)
            table.locator("th").nth(column).click()
            cells = table.locator(f"tbody tr td:nth-child({column + 1})")
            seen["sorted"] = [float(v) for v in cells.evaluate_all("c => c.map(x => x.dataset.v)")]
        browser.close()
    seen["errors"] = errors
    return seen


def _check_page(seen: dict, n_images: int) -> None:
    assert len(seen["images"]) == n_images, seen["images"]
    assert all(width > 0 for _, width in seen["images"]), seen["images"]
    assert seen["errors"] == []
    pixels = np.asarray(Image.open(io.BytesIO(seen["screenshot"])).convert("L"))
    assert pixels.shape[0] > 900 and pixels.std() > 20, "the screenshot is blank"


def test_sweep_ends_with_the_report_path(ring_sweep):
    sweep, result = ring_sweep
    assert result.stdout.strip().splitlines()[-1] == f"report: {sweep / 'report.html'}"
    assert (sweep / "report.md").is_file() and (sweep / "sweep_summary.json").is_file()
    out = result.stdout + result.stderr
    assert "job  loss           seed  status     steps" in out  # the sweep's table
    md = (sweep / "report.md").read_text()
    assert "| nonsaturating | 0 1 | 2 | 2 completed |" in md  # seeds aggregated


def test_report_opens_in_chromium_and_sorts(ring_sweep):
    sweep, _ = ring_sweep
    curves = len(list((sweep / "report_files").glob("curve_*.png")))
    assert curves == 6  # modes, HQ, both losses, both gradient norms
    seen = open_in_chromium(sweep / "report.html", sort_by="modes ↑")
    _check_page(seen, curves + 4)
    assert seen["sorted"] == sorted(seen["sorted"]) and len(seen["sorted"]) == 4


def test_image_sweep_report_opens_in_chromium(tmp_path):
    sweep, result = _sweep(tmp_path, "digits", "loss=nonsaturating,hinge", *IMAGE_SWEEP)
    assert result.stdout.strip().splitlines()[-1] == f"report: {sweep / 'report.html'}"
    curves = sorted(p.name for p in (sweep / "report_files").glob("curve_*.png"))
    keys = ("train_d_loss", "train_g_loss", "train_grad_norm_d", "train_grad_norm_g", "val_fid")
    assert curves == [f"curve_{k}.png" for k in (*keys, "val_modes")]
    seen = open_in_chromium(sweep / "report.html")
    _check_page(seen, len(curves) + 2)
    grids = {alt: w for alt, w in seen["images"] if alt.startswith("samples of job")}
    for job in "01":
        (grid,) = (sweep / job / "samples").glob("grid_*.png")
        assert grids[f"samples of job {job}"] == Image.open(grid).width


def test_wandb_spec_names_only_logged_keys_and_selects_the_group(ring_sweep):
    sweep, _ = ring_sweep
    result = subprocess.run([sys.executable, "-m", "ganlab.report", str(sweep), "--wandb"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the runs are offline: upload them with `wandb sync " in result.stdout
    spec = json.loads((sweep / "wandb_report.json").read_text())
    runs = [read_job_run(sweep / job) for job in "0123"]
    raw = [next((sweep / job / "wandb").glob("offline-run-*/run-*.wandb")).read_bytes()
           for job in "0123"]  # fmt: skip
    assert spec["group"] == sweep.name and all(r.group == sweep.name for r in runs)
    assert all(sweep.name.encode() in data for data in raw)
    leaf = expr.expr_to_filters(spec["runset"]["filters"])  # what W&B will select
    assert (leaf.key.section, leaf.key.name, leaf.op, leaf.value) == (
        "run",
        "group",
        "=",
        sweep.name,
    )
    assert [r["id"] for r in spec["runs"]] == [r.id for r in runs]
    keys = {"line": [], "media": [], "config": [], "summary": []}
    for panel in spec["panels"]:
        if panel["type"] == "line":
            keys["line"] += [panel["x"], *panel["y"]]
        elif panel["type"] == "media":
            keys["media"] += panel["keys"]
        else:
            for column in panel["columns"]:
                section = "config" if "config" in column else "summary"
                keys[section].append(column[section])
    for run, data in zip(runs, raw, strict=True):
        assert set(keys["line"]) <= run.history and set(keys["media"]) <= run.media
        assert set(keys["config"]) <= set(run.config) and set(keys["summary"]) <= run.summary
        assert all(k.split(".")[0].encode() in data for group in keys.values() for k in group)
    assert keys["line"] == ["trainer/global_step", "val/modes", "trainer/global_step",
                            "train/d_loss", "train/g_loss"]  # fmt: skip
    assert keys["media"] == ["samples"] and keys["config"] == ["loss._target_", "seed"]
    assert keys["summary"] == ["val/modes"]


def test_publish_builds_the_workspaces_report_from_the_spec(ring_sweep):
    """Offline: the objects are built (with an entity, so nothing asks the API) and each
    panel serializes to what W&B stores."""
    spec = build_spec(ring_sweep[0])
    report = report_objects(spec, entity="someone")
    (grid,) = report.blocks
    (runset,) = grid.runsets
    assert (report.entity, report.project, runset.entity, runset.project) == (
        "someone", "ganlab", "someone", "ganlab")  # fmt: skip
    assert runset.filters == spec["runset"]["filters"]
    models = [panel._to_model() for panel in grid.panels]
    assert [m.view_type for m in models] == [
        "Run History Line Plot", "Run History Line Plot", "Media Browser",
        "Parallel Coordinates Plot"]  # fmt: skip
    assert models[0].config.metrics == ["val/modes"] and models[2].config.media_keys == ["samples"]
    assert [c.accessor for c in models[3].config.columns] == [
        "config:loss.value._target_", "config:seed.value", "summary:val/modes"]  # fmt: skip


class FakeReport:
    url = "https://wandb.ai/someone/ganlab/reports/sweep--abc"
    saved = 0

    def save(self):
        FakeReport.saved += 1


def test_publish_saves_and_prints_the_url(ring_sweep, tmp_path, monkeypatch, capsys):
    sweep = ring_sweep[0]
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(build_spec(sweep)))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(SystemExit) as stop:
        main(["--publish", str(spec_path)])
    assert stop.value.code == 2 and "needs a login" in capsys.readouterr().err
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr("ganlab.report.publish.report_objects", lambda spec, entity: FakeReport())
    monkeypatch.setenv("WANDB_ENTITY", "someone")
    main(["--publish", str(spec_path)])
    assert FakeReport.saved == 1
    assert capsys.readouterr().out == f"published the W&B report: {FakeReport.url}\n"


def test_wandb_on_online_runs_publishes_at_once(ring_sweep, tmp_path, monkeypatch, capsys):
    import shutil

    sweep = tmp_path / "online"
    for job in "0123":
        shutil.copytree(ring_sweep[0] / job, sweep / job)
        (run_dir,) = (sweep / job / "wandb").glob("offline-run-*")
        run_dir.rename(run_dir.with_name(run_dir.name.removeprefix("offline-")))
    monkeypatch.setattr("ganlab.report.publish.publish", lambda path: FakeReport.url)
    main([str(sweep), "--wandb"])
    out = capsys.readouterr().out
    assert out.endswith(f"W&B report: {FakeReport.url}\n") and "offline" not in out
