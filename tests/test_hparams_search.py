"""The Optuna searches (conf/hparams_search): trials through the real command line, the
value each returns, the best parameters, and a study that resumes from its SQLite file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import assert_one_error_line, run_cli
from ganlab.train import _optimized

# Tiny budgets: a few steps, one evaluation, small sample counts, one thread.
SEARCHES = {
    "grid25_rkl": ("val/rkl", ["steps=30", "eval_every=30", "trainer=cpu", "logger=csv"]),
    "digits_fid": ("val/fid", ["steps=4", "eval_every=4", "sample_every=4", "ckpt_every=4",
                               "data.image_size=16", "model.generator.width=8",
                               "model.discriminator.width=8", "callbacks.metrics.n_samples=50",
                               "callbacks.metrics.n_real=100", "threads=1", "trainer=cpu",
                               "logger=csv"]),
}  # fmt: skip


def search(name: str, *extra: str, cwd: Path):
    return run_cli("-m", f"hparams_search={name}", *SEARCHES[name][1], *extra, cwd=cwd)


def study_trials(study_dir: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'optuna.db'}")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # FID and reverse KL
    return study.trials


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def check_jobs(jobs: list[Path], trials: list, key: str) -> None:
    """Each job ran its trial's parameters and returned its metric to Optuna: the last
    evaluation's value, or +inf (the worst) when it diverged or scored inf/NaN."""
    for job, trial in zip(jobs, trials, strict=True):
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert {f"{k}={v}" for k, v in trial.params.items()} <= set(overrides)
        summary = json.loads((job / "summary.json").read_text())
        logged = summary["metrics"].get(key)
        if summary["status"] == "diverged" or logged is None:
            assert trial.value == math.inf
        else:
            assert summary["status"] == "completed" and math.isfinite(trial.value)
            assert trial.value == pytest.approx(logged)


@pytest.mark.slow
@pytest.mark.parametrize("name", SEARCHES)
def test_search_runs_its_trials_and_resumes_its_study(name, tmp_path):
    key = SEARCHES[name][0]
    first = search(name, "hydra.sweeper.n_trials=3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    study_dir = tmp_path / "multirun" / name  # the study's SQLite file and its sweeps
    (sweep,) = [p for p in study_dir.iterdir() if p.is_dir()]  # multirun/<study>/<date>_<time>
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0", "1", "2"]
    trials = study_trials(study_dir, name)
    assert len(trials) == 3
    check_jobs(jobs, trials, key)
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = min(trials, key=lambda t: t.value)
    assert results.best_value == best.value and dict(results.best_params) == best.params

    resumed = tmp_path / "resumed"  # any sweep dir: the study lives in its storage
    second = search(name, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={resumed}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"study {name}: resuming after 3 trials" in second.stdout + second.stderr
    trials = study_trials(study_dir, name)
    assert [t.number for t in trials] == list(range(6))
    check_jobs(job_dirs(resumed), trials[3:], key)
    # the sampler's seed moved on: the resumed trials do not redraw the first ones
    assert not {str(t.params) for t in trials[:3]} & {str(t.params) for t in trials[3:]}


@pytest.mark.slow
def test_diverged_trials_rank_last_and_the_search_goes_on(tmp_path):
    """hydra-optuna-sweeper 1.3 stops a search on a NaN value (hydra#2237): a diverged
    job returns the worst value instead, and Optuna records the trial as complete."""
    result = search("grid25_rkl", "hydra.sweeper.n_trials=2", "optim.d.lr=1e6", "optim.g.lr=1e6",
                    "hydra.sweep.dir=sweep", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_trials(tmp_path / "multirun" / "grid25_rkl", "grid25_rkl")
    assert [t.value for t in trials] == [math.inf, math.inf]
    for job in job_dirs(tmp_path / "sweep"):
        assert json.loads((job / "summary.json").read_text())["status"] == "diverged"
    check_jobs(job_dirs(tmp_path / "sweep"), trials, "val/rkl")
    assert OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml").best_value == math.inf


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hparams_search=digits_fid", "hydra.sweeper.direction=maximize"],
         "error: hydra.sweeper.direction=maximize but optimized_metric=val/fid is better lower"),
        (["hparams_search=grid25_rkl", "optimized_metric=val/spread"],
         "error: optimized_metric=val/spread has no direction to optimize"),
        (["hydra/sweeper=optuna"],  # Optuna's default direction, ganlab's default metric
         "error: hydra.sweeper.direction=minimize but optimized_metric=val/modes is better higher"),
    ],
)  # fmt: skip
def test_a_search_against_its_metric_stops_before_any_trial(overrides, message, tmp_path):
    result = run_cli("-m", *overrides, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert_one_error_line(result, message)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    ("overrides", "metric", "direction"),
    [
        (["hparams_search=grid25_rkl"], "val/rkl", "minimize"),
        (["hparams_search=digits_fid"], "val/fid", "minimize"),
        (["hparams_search=grid25_rkl", "optimized_metric=val/hq"], "val/hq", "maximize"),
        (["hparams_search=digits_fid", "optimized_metric=val/modes"], "val/modes", "maximize"),
    ],
)
def test_search_direction_follows_the_metric(overrides, metric, direction):
    GlobalHydra.instance().clear()
    with initialize_config_module("ganlab.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    assert cfg.optimized_metric == metric
    assert cfg.hydra.sweeper.direction == direction
    study = cfg.hydra.sweeper.study_name
    assert cfg.hydra.sweeper.storage == f"sqlite:///multirun/{study}/optuna.db"
    choices = cfg.hydra.runtime.choices
    expected = ("mlp", "grid25") if "grid25" in overrides[0] else ("dcgan", "digits")
    assert (choices.model, choices.data) == expected


@pytest.mark.parametrize(
    ("metric", "worst"),
    [("val/fid", math.inf), ("val/rkl", math.inf), ("val/hq", -math.inf), ("val/modes", -math.inf)],
)
def test_a_diverged_or_non_finite_run_returns_the_worst_value(metric, worst):
    cfg = OmegaConf.create({"optimized_metric": metric})
    assert _optimized(cfg, {"status": "diverged", "metrics": {metric: 1.0}}) == worst
    assert _optimized(cfg, {"status": "completed", "metrics": {metric: None}}) == worst  # inf/NaN
    assert _optimized(cfg, {"status": "completed", "metrics": {metric: 0.5}}) == 0.5
    unranked = OmegaConf.create({"optimized_metric": "val/mean"})
    assert math.isnan(_optimized(unranked, {"status": "diverged", "metrics": {}}))
