"""``python -m ganlab.evaluate`` scores a checkpoint of every family by what the family can
do, through the code the training callbacks use: Pix2Pix and CycleGAN (per direction) on
the held-out test items, the toy metrics of a latent GAN on points."""

from __future__ import annotations

import csv

import pytest

from conftest import MNIST_ROOT, run_train
from ganlab.evaluate import EvaluateOptions, evaluate, main

TINY = ["model.generator.width=8", "model.discriminator.width=8", "trainer=cpu", "threads=1",
        "sample_every=1000", "callbacks.translation.n_real=200"]  # fmt: skip
PIX2PIX = ["family=pix2pix", "data=edges", "data.base.image_size=16", "data.batch_size=8",
           "steps=2", "eval_every=2", "callbacks.translation.n_samples=40", *TINY]  # fmt: skip
CYCLEGAN = ["family=cyclegan", "data=digits2mnist", f"data.root={MNIST_ROOT}",
            "data.download=false", "data.image_size=16", "data.batch_size=2",
            "family.pool_size=3", "steps=2", *TINY, "~callbacks.translation"]  # fmt: skip
CLOSE = ("l1", "psnr", "ssim", "psnr_input", "ssim_input")
LABELS = ("fid", "kid", "label_acc", "classifier_acc", "label_rel")


def last_logged(run_dir) -> dict[str, float]:
    rows = [r for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("val/fid")]
    return {k[4:]: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


def test_pix2pix_checkpoint_is_scored_as_its_run_on_the_test_split(tmp_path):
    run_train(tmp_path / "run", *PIX2PIX)
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    # the training callback's settings: its numbers, from the same code
    same = evaluate(EvaluateOptions(ckpt=ckpt, n=40, n_real=200, split="train"))
    logged = last_logged(tmp_path / "run")
    assert set(same["metrics"]) == set(CLOSE + LABELS) == set(logged)
    for key, value in logged.items():
        assert same["metrics"][key] == pytest.approx(value, rel=1e-5), key
    default = evaluate(EvaluateOptions(ckpt=ckpt, n=40, n_real=200))  # split=test
    assert default["provenance"]["ab"]["real_split"] == "test"
    assert default["metrics"]["fid"] != same["metrics"]["fid"]  # other real images
    assert {k: default["metrics"][k] for k in CLOSE} == {k: same["metrics"][k] for k in CLOSE}
    assert 0 <= default["metrics"]["label_rel"] <= 1.05


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST").is_dir(), reason="needs the MNIST files")
def test_cyclegan_checkpoint_is_scored_per_direction(tmp_path, capsys):
    run_train(tmp_path / "run", *CYCLEGAN)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    main([f"ckpt={ckpt}", "n=30", "n_real=200", f"out={tmp_path / 'm.json'}"])
    report = evaluate(EvaluateOptions(ckpt=str(ckpt), n=30, n_real=200))
    for direction in ("ab", "ba"):
        for key in ("fid", "kid", "cycle_l1", "label_acc", "classifier_acc", "label_rel"):
            assert f"{direction}/{key}" in report["metrics"], (direction, key)
        assert report["provenance"][direction]["real_split"] == "test"
        assert report["provenance"][direction]["n_fake"] == 30
    assert not any(k.endswith("/psnr") for k in report["metrics"])  # no paired targets
    assert "ab/fid" in capsys.readouterr().out


def test_toy_checkpoint_gets_the_toy_metrics(tmp_path):
    run_train(tmp_path / "run", "trainer=smoke", "threads=1")
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    report = evaluate(EvaluateOptions(ckpt=ckpt, n=2500))
    assert {"modes", "hq", "rkl", "mmd"} <= set(report["metrics"])
    logged = last_logged_toy(tmp_path / "run")
    assert report["metrics"]["modes"] == logged["modes"]  # the evaluator's 2,500 samples


def last_logged_toy(run_dir) -> dict[str, float]:
    rows = [r for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("val/modes")]
    return {k[4:]: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


def test_translation_mistakes_are_one_line(tmp_path, capsys):
    run_train(tmp_path / "run", *PIX2PIX, "~callbacks.translation")
    capsys.readouterr()
    ckpt = f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"
    mistakes = {
        "truncation=0.5": "truncation=... truncates a latent",
        "metrics=fid,sharpness": "unknown metrics ['sharpness']",
    }
    for extra, message in mistakes.items():
        with pytest.raises(SystemExit) as exit_info:
            main([ckpt, extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and message in err[0], err
