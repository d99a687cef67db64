"""Extending ganlab from outside: a researcher's own package, copied from ``examples/mygan``
into a temporary directory (never under ``src/``), holds a family, a data set, a metric and a
generator, each one class and one YAML on ``hydra.searchpath``. Each trains, samples,
evaluates and resumes exactly like a shipped one, and the metric reaches the sweep's table
and report. The README's recipes are these files, word for word."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

from conftest import REPO, resumed_equals_uninterrupted, run_cli, run_train

EXAMPLE = REPO / "examples" / "mygan"
TINY = ["data.image_size=16", "model.discriminator.width=8", "threads=1", "trainer=cpu"]
QUIET = ["eval_every=1000", "sample_every=1000", "~callbacks.metrics"]
# jobs scored, and ranked, by the plugin metric (with FID's features, on few samples)
BY_MEAN_GAP = ["+metrics=mean_gap", "optimized_metric=val/mean_gap",
               "callbacks.metrics.metrics=[fid]", "callbacks.metrics.n_samples=200",
               "callbacks.metrics.n_real=200"]  # fmt: skip


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The example package in a fresh directory, importable, its modules trusted, and the
    ``hydra.searchpath`` override that finds its configs."""
    root = tmp_path / "site"
    shutil.copytree(EXAMPLE, root / "mygan", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", f"{root}:{REPO / 'tests'}")  # for the command line
    monkeypatch.setenv("GANLAB_TRUSTED_MODULES", "mygan")
    for name in [m for m in sys.modules if m == "mygan" or m.startswith("mygan.")]:
        monkeypatch.delitem(sys.modules, name)
    return f"hydra.searchpath=[file://{root}/mygan/conf]"


def test_the_relativistic_loss_has_its_known_values(plugin):
    from mygan.relativistic import relativistic

    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # real - mean(fake) = (2, 0); fake - mean(real) = (-2, 0)
    expected = (torch.nn.functional.softplus(torch.tensor([-2.0, 0.0, -2.0, 0.0]))).sum() / 2
    assert_close(relativistic(real, fake), expected)


@pytest.mark.slow
def test_a_plugin_family_and_generator_train_sample_evaluate_and_resume_exactly(tmp_path, plugin):
    from ganlab import sample

    # augmented, as a small-data run would be: D sees augmented images in both phases
    run = ["family=relativistic", "model=upsample", "augment=diffaug", "steps=12", *TINY, *QUIET]
    run += ["+metrics=mean_gap", plugin]  # the run's metric: evaluate scores it later
    a = resumed_equals_uninterrupted(tmp_path, run, at=5)
    assert any(k.startswith("family.ema.generator") for k in a)
    full = tmp_path / "full"
    built = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["ganlab"]["resolved"]
    assert built["family"]["_target_"] == "mygan.relativistic.RelativisticGAN"
    assert built["model"]["generator"]["_target_"] == "mygan.upsample.UpsampleGenerator"

    ckpt = str(full / "checkpoints" / "last.ckpt")
    sample.main([f"ckpt={ckpt}", "n=16", f"out={tmp_path / 'samples.png'}"])
    assert (tmp_path / "samples.png").stat().st_size > 0
    # a fresh process, which knows the plugin metric from the checkpoint alone
    scoring = ["ganlab.evaluate", f"ckpt={ckpt}", "metrics=fid,mean_gap", "n=100", "n_real=100"]
    result = subprocess.run([sys.executable, "-m", *scoring, f"out={tmp_path}/m.json"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert scored["fid"] > 0 and scored["mean_gap"] > 0


@pytest.mark.slow
def test_a_plugin_data_set_trains_resumes_exactly_samples_and_evaluates(
    tmp_path, plugin, random_inception_weights
):
    """The plugin's data set (one ``InMemoryImageData`` subclass): its spec follows from the
    constructor, its batches feed ``n_critic`` = 2 D updates a step, a resumed run equals an
    uninterrupted one, and the checkpoint is sampled and scored (in Inception features: the
    data has no domain classifier)."""
    from ganlab import evaluate, sample

    run = ["data=bars", "model=dcgan", "model.generator.width=8", "n_critic=2", "steps=8"]
    run += ["data.batch_size=8", *TINY[1:], *QUIET, plugin]
    resumed_equals_uninterrupted(tmp_path, run, at=3)
    full = tmp_path / "full"
    ckpt = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["ganlab"]
    assert ckpt["spec"]["shapes"] == {"x": [1, 16, 16]}
    assert ckpt["spec"]["num_classes"] == ckpt["spec"]["modes"] == 4

    last = str(full / "checkpoints" / "last.ckpt")
    sample.main([f"ckpt={last}", "n=8", f"out={tmp_path / 'bars.png'}"])
    assert (tmp_path / "bars.png").stat().st_size > 0
    options = ["metrics=fid", "n=20", "n_real=20", "extractor=inception"]
    options += [f"inception_weights={random_inception_weights}", f"out={tmp_path}/m.json"]
    evaluate.main([f"ckpt={last}", *options])
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["fid"] > 0


def test_a_plugin_checkpoint_is_refused_until_its_module_is_trusted(tmp_path, plugin, monkeypatch):
    """A checkpoint naming the plugin's classes loads only where the user trusts its module
    (``GANLAB_TRUSTED_MODULES``): a stranger's checkpoint still cannot run code."""
    from ganlab import sample

    run = ["family=relativistic", "model=upsample", "steps=2", *TINY, *QUIET, plugin]
    run_train(tmp_path, *run)
    monkeypatch.delenv("GANLAB_TRUSTED_MODULES")
    with pytest.raises(SystemExit) as err:
        sample.main([f"ckpt={tmp_path}/checkpoints/last.ckpt", "n=4", f"out={tmp_path}/s.png"])
    assert err.value.code == 2 and not (tmp_path / "s.png").exists()


def _readme_blocks() -> dict[str, str]:
    """The README's "Extending ganlab" code blocks, by the file each names on its first line
    (``# mygan/relativistic.py``)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Extending ganlab", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:python|yaml)\n# (mygan/\S+)\n(.*?)```", section, re.S)
    return {name: body for name, body in blocks}


def test_the_readme_recipes_are_the_example_package():
    blocks = _readme_blocks()
    files = {str(f.relative_to(EXAMPLE.parent)) for f in EXAMPLE.rglob("*.*") if f.suffix != ".pyc"}
    assert set(blocks) == files - {"mygan/__init__.py"}
    for name, body in blocks.items():
        assert (EXAMPLE.parent / name).read_text() == body, name


def test_a_plugin_sweep_ranks_by_the_plugin_metric_in_its_table_and_report(tmp_path, plugin):
    """``-m`` over the shipped and the plugin family, scored by the plugin metric: every job
    logs it, the sweep's table and report show it with its direction, and the report ranks
    the jobs by it (``optimized_metric``)."""
    result = run_cli(
        "-m",
        "family=latent,relativistic",
        "model=upsample",
        *BY_MEAN_GAP,
        "steps=4",
        "logger=csv",
        *TINY,
        plugin,
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads((tmp_path / j / "summary.json").read_text()) for j in ("0", "1")]
    assert all(job["metrics"]["val/mean_gap"] > 0 for job in jobs)
    assert "mean gap ↓" in result.stdout  # the sweep's table
    report = (tmp_path / "report.md").read_text()
    assert "mean gap" in report and "relativistic" in report
    assert "optimized metric val/mean_gap (lower is better)" in report


@pytest.mark.slow
def test_an_optuna_search_optimizes_the_plugin_metric(tmp_path, plugin):
    """The search's direction comes from the plugin metric's registry entry (``mean gap``,
    lower is better), though the sweeper's config is resolved before any job registers it;
    every trial returns its value to the study."""
    result = run_cli(
        "-m",
        "hparams_search=digits_fid",
        *BY_MEAN_GAP,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "steps=2",
        "model.generator.width=8",
        "logger=csv",
        *TINY,
        plugin,
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads((tmp_path / "sweep" / j / "summary.json").read_text()) for j in "01"]
    gaps = [summary["metrics"]["val/mean_gap"] for summary in summaries]
    best = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert gaps[0] != gaps[1]
    assert f"best_value: {min(gaps)}" in best, (gaps, best)  # minimized
