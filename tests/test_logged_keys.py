"""``optimized_metric`` is checked before training against what the run's callbacks declare
they can log (``may_log``); the declarations must hold what the runs really log."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import run_train
from ganlab.train import build, compose_config


def declared(overrides: list[str], run_dir: Path) -> set[str]:
    """The ``val/`` keys the callbacks of a run with ``overrides`` declare (nothing trains)."""
    trainer, module, data = build(compose_config(["logger=csv", *overrides], run_dir))
    found = [
        c.may_log(data.data, module.family) for c in trainer.callbacks if hasattr(c, "may_log")
    ]
    return set().union(*found)


def logged(run_dir: Path) -> set[str]:
    """The ``val/`` keys of a finished run's CSV log."""
    with open(run_dir / "metrics.csv") as f:
        return {key for key in next(csv.reader(f)) if key.startswith("val/")}


@pytest.mark.parametrize("data", ["ring8", "gauss1d"])
def test_toy_runs_log_exactly_what_they_declare(data, tmp_path):
    run = [f"data={data}", "trainer=smoke", "threads=1"]
    run_train(tmp_path / "run", *run)
    assert logged(tmp_path / "run") == declared(run, tmp_path / "built")


def test_a_metric_of_another_kind_of_data_is_refused_before_training(tmp_path, capsys):
    from ganlab.errors import UserError

    expected = (
        r"optimized_metric=val/fid is not logged by this run \(vectors \(points\), family "
        r"LatentGAN\): choose one of val/modes, "
    )
    with pytest.raises(UserError, match=expected):
        run_train(tmp_path, "trainer=smoke", "optimized_metric=val/fid")
    assert not (tmp_path / "metrics.csv").exists()  # nothing trained
