"""The GitHub workflows, checked offline: valid against GitHub's workflow schema (the copy
vendored in check-jsonschema), and running the README's commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CHECK, *map(str, files)], capture_output=True, text=True, timeout=120)


def readme_command(target: str) -> str:
    """The README's quickstart line that runs ``make <target>``, without its comment."""
    readme = (REPO / "README.md").read_text()
    lines = [ln.split("#")[0].strip() for ln in readme.splitlines()]
    return next(ln for ln in lines if ln.startswith(f"make {target}"))


def steps_run(job: dict) -> list[str]:
    return [step["run"].split("#")[0].strip() for step in job["steps"] if "run" in step]


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())


def test_workflows_match_githubs_schema():
    assert WORKFLOWS, "no workflow under .github/workflows"
    result = check_jsonschema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    text = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert "    runs-on: ubuntu-latest" in text
    path = tmp_path / "broken.yml"
    path.write_text(text.replace("    runs-on: ubuntu-latest", "    run-on: ubuntu-latest", 1))
    result = check_jsonschema(path)
    assert result.returncode == 1 and "broken.yml::$.jobs.test" in result.stdout, result.stdout


def test_ci_runs_the_readmes_test_command(ci):
    command = readme_command("test")
    assert command == "make test"
    assert command in steps_run(ci["jobs"]["test"])


def test_smoke_job_runs_the_default_job(ci):
    """`make train` with the default config, only fewer steps (README: `make train`)."""
    assert readme_command("train") == "make train"
    (line,) = [r for r in steps_run(ci["jobs"]["smoke"]) if r.startswith("make train")]
    words = shlex.split(line)
    args = [w.split("=", 1)[1].split() for w in words[2:] if w.startswith("ARGS=")]
    assert words[:2] == ["make", "train"] and len(words) == 2 + len(args)
    overrides = dict(a.split("=", 1) for a in (args[0] if args else []))
    assert set(overrides) <= {"steps"} and int(overrides.get("steps", 5000)) >= 100
    checked = r'grep .*"status": "completed".* outputs/\*/\*/summary\.json'
    assert any(re.search(checked, r) for r in steps_run(ci["jobs"]["smoke"]))


@pytest.mark.parametrize("job", ["test", "smoke"])
def test_jobs_cache_pip_time_out_and_use_python_311(ci, job):
    spec = ci["jobs"][job]
    assert spec["runs-on"] == "ubuntu-latest" and 0 < spec["timeout-minutes"] <= 90
    (setup,) = [s for s in spec["steps"] if s.get("uses", "").startswith("actions/setup-python")]
    assert setup["with"] == {
        "python-version": "3.11",
        "cache": "pip",
        "cache-dependency-path": "pyproject.toml",
    }
    assert "cancel-in-progress" in ci["concurrency"]
