"""The README's headline sweeps as written: image models default to digits, losses choose
their paper's optimizer through the defaults list, a sweep outlives its bad jobs, configs
from ``hydra.searchpath`` count as choices, and one metric registry ranks and prints."""

import json
import os
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from conftest import assert_one_error_line, run_cli, run_train
from ganlab.callbacks import checkpoint
from ganlab.cli import unknown_choice
from ganlab.outcome import _console_metrics
from ganlab.train import compose_config

# a tiny budget for the headline sweeps: 2 steps, the final evaluation on 64 samples, one
# CPU thread (the test machine is shared)
FAST = ["steps=2", "callbacks.metrics.n_samples=64", "threads=1"]
GP_BATCHNORM = "loss=wgan_gp with GradientPenalty needs a critic without BatchNorm"


def sweep(tmp_path: Path, *args: str) -> tuple[list[dict], str]:
    """``python -m ganlab <args> -m`` into ``tmp_path/sweep``: the jobs of its
    ``sweep_summary.json`` and the console output."""
    out = tmp_path / "sweep"
    result = run_cli(*args, *FAST, f"hydra.sweep.dir={out}", "-m", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = json.loads((out / "sweep_summary.json").read_text())
    for job in jobs:  # each job's own summary says the same
        own = json.loads((out / job["job"] / "summary.json").read_text())
        assert own["status"] == job["status"]
    return jobs, result.stdout + result.stderr


def choice(group: str) -> str:
    return HydraConfig.get().runtime.choices[group]


# ---------------------------------------------------------------- composition


@pytest.mark.parametrize("model", ["dcgan", "resnet"])
def test_image_model_without_data_trains_on_digits_with_an_image_budget(model):
    cfg = compose_config([f"model={model}"])
    assert choice("data") == "digits" and cfg.data._target_ == "ganlab.data.images.Digits"
    assert cfg.steps == 2000 and cfg.eval_every == 2000 and cfg.optimized_metric == "val/fid"


@pytest.mark.parametrize(
    "overrides", [["model=dcgan", "data=mnist"], ["data=mnist", "model=resnet"]]
)
def test_data_on_the_command_line_wins_over_the_models_default(overrides):
    cfg = compose_config(overrides)
    assert choice("data") == "mnist" and cfg.data._target_ == "ganlab.data.images.MNIST"
    assert cfg.steps == 5000  # the root budget: only digits sets its own


def test_experiments_keep_their_data():
    cfg = compose_config(["experiment=dcgan_mnist"])
    assert choice("data") == "mnist" and cfg.steps == 10000
    cfg = compose_config(["experiment=wgan_gp_resnet_digits"])
    assert choice("data") == "digits" and cfg.steps == 2000 and cfg.optim.g.betas == [0.0, 0.9]


def test_default_job_and_gauss1d_are_unchanged():
    cfg = compose_config([])
    assert (choice("data"), choice("model")) == ("ring8", "mlp")
    assert cfg.steps == 5000 and cfg.latent.dim == 2 and cfg.latent.dist == "normal"
    assert cfg.model.generator.activation == "relu" and cfg.model.generator.width == 128
    cfg = compose_config(["data=gauss1d"])
    assert cfg.data.distribution._target_ == "ganlab.data.toy.Gaussian1D"
    assert cfg.latent.dim == 1 and cfg.latent.dist == "uniform" and cfg.model.generator.in_dim == 1
    assert cfg.model.generator.activation == "tanh" and cfg.model.generator.width == 32
    assert cfg.model.discriminator.width == 64 and cfg.model.discriminator.in_dim == 1
    assert cfg.steps == 5000 and cfg.optimized_metric == "val/w1"


@pytest.mark.parametrize(
    ("overrides", "optimizer", "settings"),
    [
        (["loss=wgan_gp"], torch.optim.Adam, {"lr": 1e-4, "betas": (0.5, 0.9)}),
        (["loss=wgan"], torch.optim.RMSprop, {"lr": 5e-5}),
        (["loss=hinge"], torch.optim.Adam, {"lr": 2e-4, "betas": (0.5, 0.999)}),
        (["optim=rmsprop", "loss=wgan_gp"], torch.optim.RMSprop, {"lr": 5e-5}),
        (["loss=wgan_gp", "optim=rmsprop"], torch.optim.RMSprop, {"lr": 5e-5}),
        (["loss=wgan", "optim=adam"], torch.optim.Adam, {"lr": 2e-4, "betas": (0.5, 0.999)}),
    ],
)
def test_a_loss_chooses_its_papers_optimizer_and_an_explicit_optim_wins(
    overrides, optimizer, settings
):
    cfg = compose_config(overrides)
    for side in ("g", "d"):
        built = instantiate(cfg.optim[side])([torch.nn.Parameter(torch.zeros(1))])
        assert type(built) is optimizer
        assert {k: built.defaults[k] for k in settings} == settings


def test_rmsprop_with_wgan_gp_trains(tmp_path):
    summary = run_train(tmp_path, "optim=rmsprop", "loss=wgan_gp", "steps=3", "eval_every=3")
    assert summary["status"] == "completed" and summary["steps"] == 3


# ---------------------------------------------------------------- search path


@pytest.fixture
def searchpath(tmp_path: Path) -> str:
    """A folder of the user's configs: ``model/tiny.yaml`` (small MLPs), ``loss/mine.yaml``."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "loss").mkdir()
    (tmp_path / "conf" / "model" / "tiny.yaml").write_text(
        "defaults:\n  - mlp\n  - _self_\n\ngenerator: {width: 8}\ndiscriminator: {width: 8}\n"
    )
    (tmp_path / "conf" / "loss" / "mine.yaml").write_text(
        "# @package _global_\nloss:\n  _target_: ganlab.losses.HingeLoss\n"
    )
    return f"hydra.searchpath=[file://{tmp_path / 'conf'}]"


def test_unknown_choice_asks_hydra_including_the_search_path(searchpath):
    assert unknown_choice(["model=tiny", "loss=mine", searchpath]) is None
    assert unknown_choice(["-m", "loss=hinge,mine", searchpath, "steps=3"]) is None
    message = unknown_choice(["model=tiny"])
    assert message == (
        "unknown model 'tiny'; choose one of: cyclegan, dcgan, mlp, pix2pix, resnet, small_dcgan"
    )
    message = unknown_choice(["loss=hinge,mien", searchpath, "-m"])
    assert message.startswith("unknown loss 'mien'; choose one of: hinge, lsgan, mine, minimax,")
    assert unknown_choice(["experiment=null", "~callbacks.metrics", "data.path=x/y"]) is None


def test_searchpath_configs_run_and_unknown_ones_are_one_line(searchpath, tmp_path):
    run = tmp_path / "run"
    args = ["model=tiny", "loss=mine", searchpath, "steps=3", "logger=csv"]
    result = run_cli(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "width: 8" in config and "HingeLoss" in config
    result = run_cli("model=tiny", "loss=mien", searchpath, cwd=tmp_path)
    assert_one_error_line(result, "error: unknown loss 'mien'; choose one of: hinge, lsgan")
    assert "mine" in result.stderr


# ---------------------------------------------------------------- the headline sweeps


@pytest.mark.slow
def test_headline_sweep_wgan_dcgan(tmp_path):
    """`python -m ganlab loss=wgan model=dcgan -m` (the README's first sweep)."""
    (job,) = sweep(tmp_path, "loss=wgan", "model=dcgan")[0]
    assert job["status"] == "completed" and job["steps"] == 2, job
    assert job["metrics"]["val/fid"] > 0 and job["metrics_provenance"]["n_fake"] == 64
    config = (tmp_path / "sweep" / "0" / ".hydra" / "config.yaml").read_text()
    assert "ganlab.data.images.Digits" in config and "torch.optim.RMSprop" in config


@pytest.mark.slow
def test_headline_sweep_of_four_losses(tmp_path):
    """`python -m ganlab -m loss=nonsaturating,wgan,wgan_gp,hinge model=dcgan`: WGAN-GP's
    gradient penalty cannot go with DCGAN's BatchNorm critic, so that job is invalid and
    says why; the other three train, and the sweep ends with its table."""
    jobs, out = sweep(tmp_path, "loss=nonsaturating,wgan,wgan_gp,hinge", "model=dcgan")
    assert [j["overrides"][0] for j in jobs] == [
        f"loss={x}" for x in ("nonsaturating", "wgan", "wgan_gp", "hinge")
    ]
    assert [j["status"] for j in jobs] == ["completed", "completed", "invalid", "completed"]
    assert jobs[2]["reason"].startswith(GP_BATCHNORM) and jobs[2]["steps"] == 0
    assert all(j["metrics"]["val/fid"] > 0 for j in jobs if j["status"] == "completed")
    assert f"error: {GP_BATCHNORM}" in out and "Traceback" not in out


@pytest.mark.slow
def test_an_invalid_job_does_not_end_the_sweep(tmp_path):
    """`python -m ganlab -m loss=wgan_gp,hinge model=dcgan data=digits` stopped at job 0."""
    jobs, _ = sweep(tmp_path, "loss=wgan_gp,hinge", "model=dcgan", "data=digits")
    assert [j["job"] for j in jobs] == ["0", "1"]
    invalid = {k: v for k, v in jobs[0].items() if k not in ("job", "overrides")}
    assert invalid == {
        "status": "invalid",
        "reason": invalid["reason"],
        "steps": 0,
        "metrics": {},
        "health": {},
        "run_dir": str(tmp_path / "sweep" / "0"),
    }
    assert invalid["reason"].startswith(GP_BATCHNORM) and "\n" not in invalid["reason"]
    assert jobs[1]["status"] == "completed" and jobs[1]["steps"] == 2


def test_a_single_invalid_run_is_still_one_error_line(tmp_path):
    result = run_cli("loss=wgan_gp", "model=dcgan", "steps=2", "logger=csv", cwd=tmp_path)
    assert_one_error_line(result, f"error: {GP_BATCHNORM}")


BOOM = '''
import lightning.pytorch as pl


class Boom(pl.Callback):
    """Fails in the middle of training (not the user's mistake) when ``fail``."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def on_train_batch_end(self, trainer, module, *args):
        if self.fail and module.g_step == 2:
            raise RuntimeError("boom at step 2")
'''


def test_a_failed_job_is_marked_and_the_sweep_goes_on(tmp_path, monkeypatch):
    (tmp_path / "boom.py").write_text(BOOM)
    monkeypatch.setenv("PYTHONPATH", f"{os.environ.get('PYTHONPATH', '')}{os.pathsep}{tmp_path}")
    args = ["+callbacks.boom._target_=boom.Boom", "+callbacks.boom.fail=true,false", "steps=4"]
    out = tmp_path / "sweep"
    result = run_cli(*args, "logger=wandb", f"hydra.sweep.dir={out}", "-m", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    failed, completed = json.loads((out / "sweep_summary.json").read_text())
    assert failed["status"] == "failed" and failed["reason"] == "RuntimeError: boom at step 2"
    assert failed["steps"] is None  # unknown: the job did not report it
    assert completed["status"] == "completed" and completed["steps"] == 4
    assert "RuntimeError: boom at step 2" in (out / "0" / "train.log").read_text()  # traceback
    for job in ("0", "1"):  # each job its own W&B run, the failed one closed before job 1
        assert len(list((out / job / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


# ---------------------------------------------------------------- the metric registry


class _Trainer:
    is_global_zero = True

    def __init__(self, root: Path) -> None:
        self.default_root_dir = str(root)


@pytest.mark.parametrize(
    ("monitor", "values", "saved"),
    [
        ("val/modes", [5.0, 7.0, 6.0, 7.0, 9.0], [5.0, 7.0, 9.0]),  # higher is better
        ("val/fid", [30.0, 20.0, 25.0, float("nan"), 10.0], [30.0, 20.0, 10.0]),  # lower
        ("val/spread", [1.0, 2.0], []),  # no direction: never ranked
    ],
)
def test_best_checkpoint_follows_the_registrys_direction(
    monitor, values, saved, tmp_path, monkeypatch
):
    calls = []
    monkeypatch.setattr(checkpoint, "save_atomic", lambda trainer, path: calls.append(path))
    keep = checkpoint.BestCheckpoint(monitor)
    best = []
    for value in values:
        before = len(calls)
        keep.update(_Trainer(tmp_path), {monitor.removeprefix("val/"): value})
        best += [value] if len(calls) > before else []
    assert best == saved and keep.best == (saved[-1] if saved else None)
    assert all(p == tmp_path / "checkpoints" / "best.ckpt" for p in calls)


def test_console_summary_names_and_formats_by_the_registry():
    summary = {
        "metrics": {"val/fid": 12.3456, "val/modes": 10.0, "val/kid": 0.1, "val/rkl": None},
        "metrics_provenance": {"extractor": "classifier_digits"},
    }
    assert _console_metrics(summary) == (
        "; FID 12.35, modes 10, reverse KL - (classifier_digits features)"
    )
    toy = {"metrics": {"val/modes": 8.0, "val/hq": 89.64, "val/rkl": 0.0071, "val/spread": 1}}
    assert _console_metrics(toy) == "; modes 8, HQ % 89.6, reverse KL 0.007"
    assert _console_metrics({"metrics": {}}) == ""
