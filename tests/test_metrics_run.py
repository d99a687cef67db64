"""Image metrics in runs: logged on schedule with provenance, cached real statistics, the
best checkpoint, the value returned to sweeps, ``python -m ganlab.evaluate``, and DDP."""

import csv
import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from conftest import loaded_after, run_cli, run_train
from ganlab.evaluate import EvaluateOptions, evaluate, main
from ganlab.train import _hydra_main, compose_config

RUN = ["model=dcgan", "data=digits", "data.image_size=16", "model.generator.width=8",
       "model.discriminator.width=8", "trainer=cpu", "steps=20", "eval_every=10",
       "callbacks.metrics.n_samples=400", "callbacks.metrics.n_real=500", "logger=csv"]  # fmt: skip
KEYS = (
    "fid",
    "kid",
    "kid_std",
    "is",
    "is_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "modes",
    "rkl",
)


def rows(run_dir: Path) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("metrics_run")
    cfg = compose_config(RUN, run_dir)
    value = _hydra_main(cfg)  # what a sweeper gets
    return run_dir, value


def test_metrics_are_logged_on_schedule_with_provenance(run):
    run_dir, value = run
    logged = [r for r in rows(run_dir) if r.get("val/fid")]
    assert [int(r["step"]) for r in logged] == [10, 20]
    for key in KEYS:
        assert all(r[f"val/{key}"] != "" for r in logged), key
    last = logged[-1]
    assert 0 < float(last["val/fid"]) and 0 <= float(last["val/precision"]) <= 1
    assert 1 <= float(last["val/modes"]) <= 10 and float(last["val/classifier_acc"]) >= 0.97
    summary = json.loads((run_dir / "summary.json").read_text())
    assert value == summary["metrics"]["val/fid"] == pytest.approx(float(last["val/fid"]))
    provenance = summary["metrics_provenance"]
    assert provenance["extractor"] == "classifier_digits" and provenance["n_fake"] == 400
    assert provenance["n_real"] == 500 and provenance["real_split"] == "train"
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_the_logged_metrics_are_the_declared_ones(run, tmp_path):
    """What ``optimized_metric`` is checked against before training (``may_log``) is what the
    run logged (an unconditional model: no class accuracy)."""
    from test_logged_keys import declared, logged

    assert logged(run[0]) == declared(RUN, tmp_path)


def test_real_statistics_are_cached(run, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run_train(tmp_path, *RUN)
    assert "real statistics read from the cache" in caplog.text
    first = [float(r["val/fid"]) for r in rows(run[0]) if r.get("val/fid")]
    again = [float(r["val/fid"]) for r in rows(tmp_path) if r.get("val/fid")]
    assert again == pytest.approx(first, rel=1e-6)  # same seed, same statistics


def test_evaluate_command_matches_the_run(run, tmp_path):
    run_dir, _ = run
    opts = EvaluateOptions(ckpt=str(run_dir / "checkpoints" / "last.ckpt"), n=400, n_real=500)
    report = evaluate(opts)
    last = [r for r in rows(run_dir) if r.get("val/fid")][-1]
    for key in KEYS:
        assert report["metrics"][key] == pytest.approx(float(last[f"val/{key}"]), rel=1e-5), key
    assert report["provenance"]["n_fake"] == 400 and report["step"] == 20
    fractions = [float(last[f"val/class_frac/{c}"]) for c in range(10)]
    assert report["mode_fractions"] == pytest.approx(fractions, rel=1e-5)


def test_evaluate_with_truncation(run):
    """``truncation=1 truncation_mode=mean`` scores exactly the untruncated samples; the
    resampled ones (|z_i| <= 0.5) score otherwise, and the report says how they were drawn."""
    ckpt = str(run[0] / "checkpoints" / "last.ckpt")
    plain = evaluate(EvaluateOptions(ckpt=ckpt, n=200, n_real=500, metrics="fid,pr"))
    one = evaluate(EvaluateOptions(ckpt=ckpt, n=200, n_real=500, metrics="fid,pr",
                                   truncation=1.0, truncation_mode="mean"))  # fmt: skip
    half = evaluate(EvaluateOptions(ckpt=ckpt, n=200, n_real=500, metrics="fid,pr",
                                    truncation=0.5))  # fmt: skip
    assert one["metrics"] == plain["metrics"] and plain["truncation"] is None
    assert half["metrics"]["fid"] != plain["metrics"]["fid"]
    assert half["truncation"] == {"psi": 0.5, "mode": "resample"}


def test_evaluating_a_checkpoint_imports_no_training_machinery(run, tmp_path):
    """The whole command (checkpoint, data module, real images, classifier, metrics) runs
    without Lightning or W&B: the data modules are plain objects (``ganlab.data.base``)."""
    ckpt = run[0] / "checkpoints" / "last.ckpt"
    code = (
        "from ganlab.evaluate import main\n"
        f"main(['ckpt={ckpt}', 'n=200', 'n_real=200', 'out={tmp_path / 'm.json'}'])"
    )
    assert loaded_after(code) == []
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["fid"] > 0


def test_per_class_fractions_are_logged_and_drawn(run):
    run_dir, _ = run
    last = [r for r in rows(run_dir) if r.get("val/fid")][-1]
    logged = [float(last[f"val/class_frac/{c}"]) for c in range(10)]
    assert sum(logged) == pytest.approx(1.0)
    assert sum(p > 0 for p in logged) == float(last["val/modes"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mode_fractions"] == pytest.approx(logged)
    assert [p.name for p in sorted((run_dir / "samples").glob("modes_*.png"))] == [
        "modes_0000010.png", "modes_0000020.png"]  # fmt: skip


def test_stacked_runs_draw_the_1000_modes_without_1000_scalars(tmp_path):
    run_train(tmp_path, *RUN, "data=stacked_digits", "data.image_size=16", "steps=10")
    last = [r for r in rows(tmp_path) if r.get("val/fid")][-1]
    assert not [k for k in last if k.startswith("val/class_frac")]
    summary = json.loads((tmp_path / "summary.json").read_text())
    fractions = summary["mode_fractions"]
    assert len(fractions) == 1000 and sum(fractions) == pytest.approx(1.0)
    assert sum(p > 0 for p in fractions) == summary["metrics"]["val/modes"]
    assert (tmp_path / "samples" / "modes_0000010.png").stat().st_size > 1000


@pytest.mark.slow
def test_folder_run_scores_with_inception_features(tmp_path, random_inception_weights, caplog):
    """An unlabelled folder has no domain classifier: FID/KID/IS/PR come from the stock
    InceptionV3 code path (random weights here, as offline tests have no real ones)."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    pixels = torch.Generator().manual_seed(0)
    for i in range(24):
        array = torch.randint(0, 256, (16, 16, 3), generator=pixels, dtype=torch.uint8)
        Image.fromarray(array.numpy()).save(folder / f"{i:02d}.png")
    caplog.set_level(logging.INFO)
    summary = run_train(tmp_path / "run", *RUN, "data=folder", f"data.path={folder}",
                        "data.image_size=16", "data.num_workers=0", "data.batch_size=8",
                        "steps=4", "eval_every=4", "callbacks.metrics.n_samples=12",
                        "callbacks.metrics.n_real=24", "callbacks.metrics.extractor=inception",
                        f"callbacks.metrics.inception_weights={random_inception_weights}",
                        "optimized_metric=val/fid")  # fmt: skip
    metrics = summary["metrics"]
    assert {"val/fid", "val/kid", "val/is", "val/precision", "val/recall"} <= set(metrics)
    assert metrics["val/fid"] > 0 and "val/modes" not in metrics
    provenance = summary["metrics_provenance"]
    assert provenance["extractor"].startswith("inception") and provenance["n_real"] == 24
    assert "no domain classifier for ImageFolder: no mode counts" in caplog.text
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_image_sweep_ends_with_a_table_of_fid(tmp_path):
    """`python -m ganlab -m loss=nonsaturating,hinge model=dcgan data=digits`: each job
    returns its FID to Hydra, and the sweep's table shows it."""
    from ganlab.metrics.registry import metric

    sweep = tmp_path / "sweep"
    result = run_cli("-m", "loss=nonsaturating,hinge", *RUN, "steps=10",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = json.loads((sweep / "sweep_summary.json").read_text())
    fids = [j["metrics"]["val/fid"] for j in jobs]
    assert len(fids) == 2 and all(f > 0 for f in fids)
    out = (result.stdout + result.stderr).splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("job  loss"))
    assert out[header].split()[:5] == ["job", "loss", "status", "steps", "time"]
    assert "FID ↓" in out[header]
    for job, fid in enumerate(fids):  # one row per job: its loss and its FID (best marked *)
        row = out[header + 1 + job].split()
        assert row[:3] == [str(job), ["nonsaturating", "hinge"][job], "completed"]
        assert row[6].rstrip("*") == metric("val/fid").format(fid)  # after "25.9 s"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["metrics=fid,sharpness"], "unknown metrics ['sharpness']"),
        (["n=1"], "n must be >= 2"),
        (["split=val"], "split=val: choose one of"),
        (["truncation=0"], "truncation must be a number > 0"),
    ],
)
def test_evaluate_mistakes_are_one_line(extra, message, run, tmp_path, capsys):
    capsys.readouterr()  # the training run's own output (Lightning's notices) is not evaluate's
    argv = [f"ckpt={run[0] / 'checkpoints' / 'last.ckpt'}", *extra]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and message in err[0], err


def test_conditional_run_logs_class_accuracy(tmp_path):
    run_train(tmp_path, *RUN, "model.conditional=true")
    last = [r for r in rows(tmp_path) if r.get("val/fid")][-1]
    assert 0 <= float(last["val/class_acc"]) <= 1


@pytest.mark.slow
def test_metrics_of_two_ranks_equal_one_process(run, tmp_path, monkeypatch):
    """Each of 2 CPU processes generates and extracts only its share of the samples (and of
    the real images, on a cache miss); the gathered features give the metrics one process
    computes from the same final weights."""
    import shutil

    from ganlab.train import train

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), *sys.path]))
    cache = tmp_path / "cache"  # the trained classifier, but no real statistics yet
    cache.mkdir()
    for path in Path(os.environ["GANLAB_CACHE"]).glob("classifier_*.pt"):
        shutil.copy(path, cache)
    monkeypatch.setenv("GANLAB_CACHE", str(cache))
    cfg = compose_config([*RUN, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                          "callbacks.metrics.n_samples=401"], tmp_path / "ddp")  # fmt: skip
    summary = train(cfg)
    opts = EvaluateOptions(ckpt=str(tmp_path / "ddp" / "checkpoints" / "last.ckpt"), n=401,
                           n_real=500)  # fmt: skip
    report = evaluate(opts)
    for key in KEYS:
        got = summary["metrics"][f"val/{key}"]
        assert got == pytest.approx(report["metrics"][key], rel=1e-5), key
    assert summary["metrics_provenance"]["extracted_per_rank"] == {
        "fake": [201, 200], "real": [250, 250]}  # fmt: skip
    assert report["provenance"]["n_fake"] == 401
    assert "extracted_per_rank" not in report["provenance"]  # one process extracts all
