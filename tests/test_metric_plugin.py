"""A user's metric from outside the package: one class and one YAML in a throw-away package
on ``hydra.searchpath``, selected with ``+metrics=<name>``, computed by the scorer, ranked by
the registry (``optimized_metric``, the sweep table) like ganlab's; and callbacks are built
only for the runs whose data and family give what they need."""

from __future__ import annotations

import csv
import json
import os
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli, run_train
from ganlab.callbacks.needs import Needs
from ganlab.metrics import registry
from ganlab.train import _hydra_main, build, compose_config

PLUGIN = '''
from ganlab.metrics.registry import SAMPLES, ImageMetric


class Brightness(ImageMetric):
    """Mean pixel value of the samples in [0, 1]."""

    name, label, goal, fmt, needs = "brightness", "brightness", "max", ".3f", (SAMPLES,)

    def compute(self, inputs):
        return {"brightness": float((inputs.samples + 1).mean() / 2)}
'''
YAML = "# @package metrics.brightness\n_target_: my_metrics.Brightness\n"
IMAGE = ["model=dcgan", "data=digits", "data.image_size=16", "model.generator.width=8",
         "model.discriminator.width=8", "trainer=cpu", "threads=1", "steps=4",
         "eval_every=4", "sample_every=1000", "callbacks.metrics.n_samples=64",
         "callbacks.metrics.n_real=200", "callbacks.metrics.metrics=[fid]"]  # fmt: skip


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> str:
    """The user's package (``my_metrics.py``) and config (``conf/metrics/brightness.yaml``),
    outside ``src/``; returns the ``hydra.searchpath`` override."""
    package = tmp_path / "user"
    (package / "conf" / "metrics").mkdir(parents=True)
    (package / "my_metrics.py").write_text(textwrap.dedent(PLUGIN))
    (package / "conf" / "metrics" / "brightness.yaml").write_text(YAML)
    monkeypatch.syspath_prepend(str(package))
    yield f"hydra.searchpath=[file://{package / 'conf'}]"
    registry.IMAGE_METRICS.pop("brightness", None)  # this process's registry, as before
    registry.METRICS.pop("val/brightness", None)


def test_a_plugin_metric_is_logged_ranked_and_returned(plugin, tmp_path):
    run_dir = tmp_path / "sweep" / "0"  # a one-job sweep folder, for the sweep table
    args = ["logger=csv", *IMAGE, plugin, "+metrics=brightness"]
    value = _hydra_main(compose_config([*args, "optimized_metric=val/brightness"], run_dir))
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    logged = [float(r["val/brightness"]) for r in rows if r.get("val/brightness")]
    assert len(logged) == 1 and 0 < logged[0] < 1 and value == pytest.approx(logged[0])
    assert "val/fid" in rows[0]  # beside ganlab's own
    assert registry.metric("val/brightness").goal == "max"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metric_registry"]["val/brightness"]["goal"] == "max"

    # the sweep table of another process knows it from the summary alone
    registry.METRICS.pop("val/brightness")
    from ganlab.report.jobs import load_jobs
    from ganlab.report.table import job_table, to_text

    header = to_text(job_table(load_jobs(tmp_path / "sweep"))).splitlines()[0]
    assert "brightness ↑" in header and registry.metric("val/brightness").fmt == ".3f"


def test_a_plugin_metric_selected_on_the_command_line_reaches_the_sweep_table(
    plugin, tmp_path, monkeypatch
):
    """``python -m ganlab -m ... +metrics=brightness``: the job logs it and returns it to the
    sweeper, and the sweep's table (made by the launching process) ranks it."""
    user = str(tmp_path / "user")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([user, os.environ.get("PYTHONPATH", "")]))
    sweep = tmp_path / "sweep"
    result = run_cli("-m", plugin, "+metrics=brightness", *IMAGE, "logger=csv",
                     "optimized_metric=val/brightness", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (job,) = json.loads((sweep / "sweep_summary.json").read_text())
    assert 0 < job["metrics"]["val/brightness"] < 1 and job["status"] == "completed"
    out = (result.stdout + result.stderr).splitlines()
    header = next(line for line in out if line.startswith("job"))
    assert "brightness ↑" in header


def test_an_unselected_plugin_metric_is_refused_as_optimized_metric(plugin, tmp_path):
    from ganlab.errors import UserError

    with pytest.raises(UserError, match="optimized_metric=val/brightness is not a metric"):
        run_train(tmp_path, *IMAGE, plugin, "optimized_metric=val/brightness")


def test_a_plugin_metric_cannot_take_a_name_of_ganlabs():
    class Fake(registry.ImageMetric):
        name = "fid"

    with pytest.raises(ValueError, match="needs a name that is not ganlab's"):
        registry.register(Fake())
    assert registry.metric("val/fid").goal == "min"


# ---------------------------------------------------------------- callbacks by their needs
class Recorder:
    """A user's callback that needs image data: built only for runs that have it."""

    needs = Needs(kinds=("images",))
    built = 0

    def __init__(self) -> None:
        Recorder.built += 1


def callback_types(overrides: list[str], run_dir: Path) -> list[str]:
    trainer, _, _ = build(compose_config(["logger=csv", *overrides], run_dir))
    return [type(c).__name__ for c in trainer.callbacks]


def test_a_callback_whose_needs_are_not_met_is_not_built(tmp_path, monkeypatch):
    from ganlab.callbacks.metrics import ImageMetrics

    made = []
    original = ImageMetrics.__init__
    monkeypatch.setattr(
        ImageMetrics, "__init__", lambda self, **kw: made.append(1) or original(self, **kw)
    )
    mine = "+callbacks.mine._target_=test_metric_plugin.Recorder"
    toy = callback_types(["trainer=smoke", mine], tmp_path / "toy")
    assert "ToyEvaluator" in toy and made == [] and Recorder.built == 0
    assert not {"ImageMetrics", "SampleGrid", "TranslationMetrics", "Recorder"} & set(toy)
    image = callback_types(["model=dcgan", mine], tmp_path / "image")
    assert {"ImageMetrics", "SampleGrid", "Recorder"} <= set(image) and made == [1]
    assert not {"ToyEvaluator", "TranslationMetrics"} & set(image) and Recorder.built == 1
    removed = callback_types(["model=dcgan", "~callbacks.samples"], tmp_path / "removed")
    assert "SampleGrid" not in removed and "ImageMetrics" in removed
