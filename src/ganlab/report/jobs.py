"""The jobs of a sweep directory: their overrides, status, final metrics and files.

A sweep directory (Hydra's ``multirun/<date>/<time>``, or an Optuna sweep) holds one
folder per job, named ``0``, ``1``, ...; each has ``.hydra/overrides.yaml`` and, once the
job has ended, ``summary.json``. Jobs are read in numeric order (an Optuna sweep's trial
order); a job folder without a summary is kept, with status ``missing``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from ganlab.errors import UserError
from ganlab.metrics.registry import DESCRIBED, declare

SEED = "seed"
MISSING = "missing"  # a job folder with no summary.json: crashed, killed or still running


@dataclass
class Job:
    """One job of a sweep, as its folder records it."""

    name: str
    path: Path
    lines: list[str]  # the overrides as typed: ``optim.d.lr=1e-4``
    summary: dict[str, Any] = field(default_factory=dict)
    optimized_metric: str | None = None

    def __post_init__(self) -> None:
        # key (``+regularizers.r1.weight``) -> value as typed, and as Hydra reads it
        self.overrides, self.values = parse_overrides(self.lines)

    @property
    def status(self) -> str:
        return self.summary.get("status", MISSING)

    @property
    def reason(self) -> str | None:
        """Why the job did not complete, when its summary says (``invalid`` jobs do)."""
        if self.status == MISSING:
            return "no summary.json: the job crashed, was killed or is still running"
        return self.summary.get("reason")

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def metrics(self) -> dict[str, float | None]:
        return self.summary.get("metrics", {})

    @property
    def health(self) -> dict[str, int]:
        return self.summary.get("health", {})

    def label(self, keys: list[str]) -> str:
        """``<name>: k=v k=v`` over ``keys`` (the overrides that vary in the sweep)."""
        values = " ".join(f"{k}={self.overrides[k]}" for k in keys if k in self.overrides)
        return f"{self.name}: {values}" if values else self.name

    def as_dict(self) -> dict[str, Any]:
        """The job as ``sweep_summary.json`` lists it: name, overrides, then its summary."""
        return {"job": self.name, "overrides": self.lines, "status": self.status, **self.summary}


def parse_overrides(lines: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Key -> value as typed, and key -> value as Hydra's override parser reads it, which
    compares (``optim.d.lr=1e-4``: ``"1e-4"`` and ``"0.0001"``)."""
    parser = OverridesParser.create()
    typed, values = {}, {}
    for line in lines:
        try:
            (override,) = parser.parse_overrides([line])
        except Exception:  # not an override Hydra can read back: keep it whole
            typed[line] = values[line] = ""
            continue
        key = override.get_key_element()
        typed[key] = line.partition("=")[2].strip()  # no "=" in a key: the first one splits
        values[key] = override.get_value_element_as_str()
    return typed, values


def _load_job(path: Path) -> Job:
    overrides_file = path / ".hydra" / "overrides.yaml"
    lines = list(OmegaConf.load(overrides_file)) if overrides_file.is_file() else []
    summary_file = path / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    declare(summary.get(DESCRIBED, {}))  # the user's metrics it logged, ranked like ganlab's
    config_file = path / ".hydra" / "config.yaml"
    optimized = None
    if config_file.is_file():
        optimized = OmegaConf.load(config_file).get("optimized_metric")
    return Job(path.name, path, [str(x) for x in lines], summary, optimized)


def load_jobs(sweep_dir: str | Path) -> list[Job]:
    """The jobs of ``sweep_dir`` in numeric order; a one-line ``UserError`` when it is not
    a sweep directory."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a directory")
    folders = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir()
        and p.name.isdigit()
        and ((p / ".hydra").is_dir() or (p / "summary.json").is_file())
    ]
    if not folders:
        raise UserError(f"{sweep_dir} has no job folders (0/, 1/, ... from python -m ganlab -m)")
    return [_load_job(p) for p in sorted(folders, key=lambda p: int(p.name))]


def varying_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose value is not the same in every job, in command-line order."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job.overrides if k not in keys]
    return [k for k in keys if len({job.values.get(k) for job in jobs}) > 1]


def is_seed(key: str) -> bool:
    """Whether an override key sets the seed (``seed``, ``+seed``)."""
    return key.lstrip("+~") == SEED


def count_statuses(jobs: list[Job]) -> str:
    """``"3 completed, 1 diverged"``, in order of first appearance."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def optimized_metric(jobs: list[Job]) -> str | None:
    """The sweep's ``optimized_metric`` (the most common one, if jobs differ)."""
    names = [j.optimized_metric for j in jobs if j.optimized_metric]
    return max(names, key=names.count) if names else None


@dataclass
class SeedGroup:
    """Jobs whose overrides differ only in ``seed``."""

    overrides: dict[str, str]  # the varying overrides they share (seed excluded)
    jobs: list[Job]

    @property
    def completed(self) -> list[Job]:
        return [j for j in self.jobs if j.completed]

    def mean_std(self, key: str) -> tuple[float | None, float | None, int]:
        """Mean, sample standard deviation and count of ``key`` over the completed jobs
        that have a finite value (std is None below 2 values)."""
        values = [j.metrics.get(key) for j in self.completed]
        values = [v for v in values if v is not None]
        if not values:
            return None, None, 0
        std = statistics.stdev(values) if len(values) > 1 else None
        return statistics.fmean(values), std, len(values)


def seed_groups(jobs: list[Job]) -> list[SeedGroup]:
    """Jobs grouped by their varying overrides other than ``seed``, in order of first job;
    empty when no two jobs differ only in their seed."""
    keys = [k for k in varying_keys(jobs) if not is_seed(k)]
    if len(keys) == len(varying_keys(jobs)):  # the seed does not vary
        return []
    groups: dict[tuple, SeedGroup] = {}
    for job in jobs:
        shared = {k: job.overrides[k] for k in keys if k in job.overrides}
        same = tuple((k, job.values.get(k)) for k in keys)
        groups.setdefault(same, SeedGroup(shared, [])).jobs.append(job)
    result = list(groups.values())
    return result if any(len(g.jobs) > 1 for g in result) else []
