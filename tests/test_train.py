"""End-to-end runs: one smoke run per config choice, sweeps, errors, the default job."""

import csv
import json
from pathlib import Path

import hydra
import pytest

from conftest import assert_one_error_line, run_cli, run_train
from ganlab.train import _hydra_main, compose_config
from test_image_train import IMAGE_DATA, IMAGE_EXPERIMENTS, IMAGE_MODELS

CONF = Path(__file__).resolve().parents[1] / "src" / "ganlab" / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


IMAGE = {f"model={m}" for m in IMAGE_MODELS} | {f"data={d}" for d in IMAGE_DATA}
IMAGE |= {f"experiment={e}" for e in IMAGE_EXPERIMENTS}


# the choices of image translation (paired or two-domain data, their nets, their families'
# experiments): for Pix2Pix and CycleGAN, not the latent GAN's smoke runs (test_families.py)
def is_translation(override: str) -> bool:
    cfg = compose_config([override], "outputs/test")
    kinds = ("pairs", "domains")
    data_kind = hydra.utils.get_class(cfg.data._target_).kind
    return cfg.model.input in kinds or data_kind in kinds


TRANSLATION = {
    o
    for group in ("data", "model", "experiment")
    for o in (f"{group}={c}" for c in choices(group))
    if is_translation(o)
}
SMOKE = [
    o
    for o in (
        [f"loss={c}" for c in choices("loss")]
        + [f"data={c}" for c in choices("data")]
        + [f"model={c}" for c in choices("model")]
        + [f"optim={c}" for c in choices("optim")]
        + [f"logger={c}" for c in choices("logger") if c != "wandb"]  # wandb: multirun test
        + [f"experiment={c}" for c in EXPERIMENTS]
    )
    if o not in IMAGE | TRANSLATION  # image choices: test_image_train
]


def test_every_data_model_and_experiment_is_toy_or_image():
    every = {f"{g}={c}" for g in ("data", "model") for c in choices(g)}
    every |= {f"experiment={c}" for c in EXPERIMENTS}
    toy = {o for o in SMOKE if o.split("=")[0] in ("data", "model", "experiment")}
    assert every == toy | IMAGE | TRANSLATION
    for override in toy | IMAGE:
        cfg = compose_config(["model=dcgan", override] if override in IMAGE else [override])
        assert (cfg.model.input == "images") == (override in IMAGE), override


@pytest.mark.parametrize("override", SMOKE)
def test_smoke_run_per_config_choice(override, tmp_path):
    summary = run_train(tmp_path, "trainer=smoke", override)
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert any(k in summary["metrics"] for k in ("val/modes", "val/mean"))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 20
    if override not in ("logger=none",):
        rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
        assert {"train/d_loss", "train/g_loss", "train/grad_norm/g", "val/spread"} <= set(rows[0])


def test_default_trainer_choices_compose():
    for trainer in choices("trainer"):
        cfg = compose_config([f"trainer={trainer}"])
        assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_main_returns_the_optimized_metric(tmp_path):
    cfg = compose_config(["trainer=smoke", "logger=csv", "optimized_metric=val/hq"], tmp_path)
    value = _hydra_main(cfg)
    assert value == json.loads((tmp_path / "summary.json").read_text())["metrics"]["val/hq"]


def test_gauss1d_recovers_mean_and_std(tmp_path):
    summary = run_train(tmp_path, "data=gauss1d", "steps=3000", "eval_every=1000")
    m = summary["metrics"]
    assert abs(m["val/mean"] - 4.0) < 0.15, m
    assert abs(m["val/std"] - 1.25) < 0.15, m
    assert (tmp_path / "plots" / "step_0003000.png").is_file()


def test_healthy_run_raises_no_flag_and_broken_run_does(tmp_path):
    healthy = run_train(tmp_path / "ok", "steps=1500", "eval_every=500")
    assert healthy["health"] == {} and healthy["health_history"] == {}, healthy
    broken = run_train(
        tmp_path / "broken",
        "loss=minimax",  # saturating G loss against an overpowered D
        "optim.d.lr=5e-3",
        "optim.g.lr=1e-5",
        "n_critic=5",
        "steps=600",
        "eval_every=200",
    )
    assert {"d_wins", "vanishing_g_grad", "collapse"} <= set(broken["health"]), broken
    rows = list(csv.DictReader(open(tmp_path / "broken" / "metrics.csv")))
    assert any(r.get("health/vanishing_g_grad") == "1.0" for r in rows)


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss=foo", "error: unknown loss 'foo'; choose one of: hinge, lsgan, minimax"),
        ("optim.g.lr=-0.1", "error: optimizer_g: Invalid learning rate: -0.1"),
        ("n_critic=0", "error: n_critic must be >= 1, got 0"),
        ("steps=???", "error: config: Missing mandatory value: steps"),
    ],
)
def test_bad_input_gives_one_clear_line(override, message, tmp_path):
    result = run_cli(
        "trainer=smoke", "logger=csv", override, f"hydra.run.dir={tmp_path}", cwd=tmp_path
    )
    assert_one_error_line(result, message)


@pytest.mark.slow
def test_multirun_sweeps_losses_each_job_its_own_run(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "loss=nonsaturating,hinge,wgan_gp",
        "data=ring8",
        "trainer=smoke",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2"]
    for job, loss in zip(jobs, ["NonSaturating", "Hinge", "Wasserstein"], strict=True):
        assert loss in (job / "train.log").read_text()
        assert json.loads((job / "summary.json").read_text())["status"] == "completed"
        assert (job / "metrics.csv").is_file()
        (run,) = (job / "wandb").glob("offline-run-*/run-*.wandb")  # one W&B run per job
        assert sweep.name.encode() in run.read_bytes()  # grouped by the sweep
    assert not list(tmp_path.glob("outputs")) and not list(tmp_path.glob("multirun"))


@pytest.mark.slow
def test_default_main_job_covers_all_ring8_modes(tmp_path):
    result = run_cli(f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"run dir: {tmp_path / 'run'}" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metrics"]["val/modes"] == 8, summary
    assert summary["steps"] == 5000  # its time is a benchmark's (README, ~50 s), not a test's
    assert "modes 8, HQ % " in result.stdout
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert list((tmp_path / "run" / "plots").glob("step_*.png"))


@pytest.mark.slow
def test_wheel_ships_the_configs(tmp_path):
    import subprocess
    import sys
    import zipfile

    repo = CONF.parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ganlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ganlab/conf/{p.relative_to(CONF)}" for p in CONF.rglob("*.yaml")}
    assert expected and expected <= names


def test_slurm_launcher_preset_composes():
    from hydra.core.hydra_config import HydraConfig

    compose_config(["hydra/launcher=slurm", "trainer=ddp"])
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.timeout_min == 240 and launcher.tasks_per_node == 1
