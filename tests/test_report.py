"""The comparison report on sweep directories written by hand: tables, best marks, seeds
aggregated, failed jobs marked, Markdown links, the command line's one-line errors."""

from __future__ import annotations

import json
import logging
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ganlab.report import write_report
from ganlab.report.build import collect
from ganlab.report.jobs import load_jobs, parse_overrides, seed_groups, varying_keys
from ganlab.report.table import job_table, seed_table, to_text
from ganlab.sweep import SweepSummary

PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5e2a3a40000000049454e44ae426082"
)
# job -> overrides, summary (None: the job left no summary.json)
JOBS = {
    "0": (["loss=hinge", "seed=0", "steps=40"], {"status": "completed", "val/modes": 7.0}),
    "1": (["loss=hinge", "seed=1", "steps=40"], {"status": "completed", "val/modes": 5.0}),
    "2": (["loss=lsgan", "seed=0", "steps=40"], {"status": "completed", "val/modes": 6.0}),
    "3": (["loss=lsgan", "seed=1", "steps=40"], {"status": "diverged", "val/modes": 8.0}),
    "4": (["loss=wgan", "seed=0", "steps=40"], {"status": "invalid", "reason": "no critic"}),
    "10": (["loss=wgan", "seed=1", "steps=40"], None),
}


def make_job(sweep: Path, name: str, overrides: list[str], summary: dict | None) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text("optimized_metric: val/modes\n")
    if summary is None:
        return
    summary = dict(summary)
    modes = summary.pop("val/modes", None)
    metrics = {} if modes is None else {"val/modes": modes, "val/rkl": 1 / modes}
    summary |= {"steps": 40, "seconds": 2.5, "metrics": metrics, "health": {"collapse": 20}}
    (job / "summary.json").write_text(json.dumps(summary))
    if summary["status"] == "invalid":  # stopped before training: no log, no pictures
        return
    rows = ["step,train/d_loss,train/g_loss,val/modes"]
    rows += [
        f"{s},{1 + s / 100},{0.7 - s / 100},{'' if s < 40 else modes or ''}"
        for s in (10, 20, 30, 40)
    ]
    (job / "metrics.csv").write_text("\n".join(rows) + "\n")
    (job / "plots").mkdir()
    for step in (20, 40):
        (job / "plots" / f"step_{step:07d}.png").write_bytes(PNG)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    for name, (overrides, summary) in JOBS.items():
        make_job(tmp_path / "sweep", name, overrides, summary)
    return tmp_path / "sweep"


def test_jobs_in_numeric_order_failed_ones_kept_best_among_completed(sweep):
    jobs = load_jobs(sweep)
    assert [j.name for j in jobs] == ["0", "1", "2", "3", "4", "10"]  # 10 after 4, not after 1
    assert [j.status for j in jobs][3:] == ["diverged", "invalid", "missing"]
    table = job_table(jobs)
    assert table.header[:3] == ["job", "loss", "seed"]  # steps=40 is the same everywhere
    modes = table.header.index("modes ↑")
    best = [row[0].text for row in table.rows if row[modes].best]
    assert best == ["0"], "the diverged job's 8 modes are not final, job 0's 7 are the best"
    rkl = table.header.index("reverse KL ↓")
    assert [row[0].text for row in table.rows if row[rkl].best] == ["0"]  # 1/7: lowest
    status = {row[0].text: row[table.header.index("status")] for row in table.rows}
    assert status["4"].note == "no critic" and "crashed" in status["10"].note
    text = to_text(table)
    assert "7*" in text and "8*" not in text and "collapse@20" in text


def test_seeds_aggregated_mean_std_n_over_completed_jobs(sweep):
    table = seed_table(load_jobs(sweep))
    assert table.header[:4] == ["loss", "jobs", "n", "status"]
    rows = {row[0].text: row for row in table.rows}
    assert list(rows) == ["hinge", "lsgan", "wgan"]
    modes = table.header.index("modes ↑")
    assert rows["hinge"][2].text == "2" and rows["hinge"][1].text == "0 1"
    assert rows["hinge"][modes].text == f"6.0 ± {statistics.stdev([7, 5]):.2g}"
    assert rows["hinge"][modes].best
    assert rows["lsgan"][2].text == "1" and rows["lsgan"][3].text == "1 completed, 1 diverged"
    assert rows["lsgan"][modes].text == "6.0"  # one completed seed: no std
    assert rows["wgan"][2].text == "0" and rows["wgan"][modes].text == "-"
    assert table.status == ["completed", "1 completed, 1 diverged", "1 invalid, 1 missing"]


def test_no_seed_table_without_jobs_differing_only_in_seed(tmp_path):
    for i, loss in enumerate(["hinge", "lsgan"]):
        make_job(tmp_path, str(i), [f"loss={loss}", f"seed={i}"], {"status": "completed"})
    assert seed_table(load_jobs(tmp_path)) is None


def test_overrides_parsed_by_hydra():
    typed, values = parse_overrides(
        ["optim.d.lr=1e-4", "+regularizers.r1.weight=0.1", "loss=hinge"]
    )
    assert typed == {"optim.d.lr": "1e-4", "+regularizers.r1.weight": "0.1", "loss": "hinge"}
    assert values == {"optim.d.lr": "0.0001", "+regularizers.r1.weight": "0.1", "loss": "hinge"}


def test_same_value_written_two_ways_does_not_vary(tmp_path):
    make_job(tmp_path, "0", ["optim.d.lr=1e-4", "seed=0"], {"status": "completed"})
    make_job(tmp_path, "1", ["optim.d.lr=0.0001", "seed=1"], {"status": "completed"})
    jobs = load_jobs(tmp_path)
    assert varying_keys(jobs) == ["seed"]
    assert len(seed_groups(jobs)) == 1 and jobs[0].as_dict()["overrides"][0] == "optim.d.lr=1e-4"


def test_html_marks_failed_jobs_and_best_values(sweep):
    html = write_report(sweep).read_text()
    assert html.count('<tr class="failed">') == 3 + 2  # 3 jobs + 2 seed groups
    assert "no critic" in html and "no summary.json" in html
    assert len(re.findall(r'<td class="best" data-v="7.0"', html)) == 1
    assert "<script>" in html and 'src="http' not in html  # self-contained
    pictures = re.findall(r'<img class="sample" src="data:image/png;base64,', html)
    assert len(pictures) == 4  # the jobs that drew samples, the diverged one too
    assert html.count("step 40, diverged") == 1
    assert html.count('<div class="none">no samples</div>') == 2  # jobs 4 and 10: still shown


def test_markdown_links_resolve_and_failed_jobs_are_marked(sweep, tmp_path):
    out = tmp_path / "elsewhere"
    write_report(sweep, out)
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 3 + 4  # curves (optimized metric, two losses) + the samples
    for link in links:
        assert (out / link).is_file(), link
    assert "| _invalid: no critic_ |" in md and "**7**" in md and "_diverged_" in md


def test_optuna_sweep_shows_trials_in_order(tmp_path):
    for i in range(12):
        make_job(tmp_path, str(i), [f"optim.d.lr={i + 1}e-4"], {"status": "completed"})
    results = {"name": "optuna", "best_params": {"optim.d.lr": 0.0003}, "best_value": 8.0}
    (tmp_path / "optimization_results.yaml").write_text(yaml.safe_dump(results))
    report = collect(tmp_path)
    assert [row[0].text for row in report.jobs_table.rows] == [str(i) for i in range(12)]
    assert "Optuna: best value 8.0 with optim.d.lr=0.0003" in report.notes


def test_report_failure_never_kills_the_sweep_summary(sweep, monkeypatch, caplog, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full\nmore")

    monkeypatch.setattr("ganlab.report.write_report", broken)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    with caplog.at_level(logging.INFO):
        SweepSummary().on_multirun_end(config)
    jobs = json.loads((sweep / "sweep_summary.json").read_text())
    assert [j["status"] for j in jobs][3:] == ["diverged", "invalid", "missing"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["report: not written (RuntimeError: disk full)"]
    assert "report:" not in capsys.readouterr().out
    assert "diverged: job(s) 3" in caplog.text and "missing: job(s) 10" in caplog.text


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganlab.report", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/nothing"], "error: {tmp}/nothing is not a directory"),
        (["{tmp}"], "error: {tmp} has no job folders"),
        (["{sweep}", "--wandb"], "error: no W&B runs in {sweep}/*/wandb"),
        (["--publish", "{sweep}/0/summary.json"], "error: {sweep}/0/summary.json is not a ganlab"),
        ([], "error: give a sweep directory"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_command_mistakes_are_one_line(sweep, tmp_path, args, message):
    fill = {"tmp": tmp_path / "empty", "sweep": sweep}
    fill["tmp"].mkdir()
    result = _cli(*[a.format(**fill) for a in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message.format(**fill))
