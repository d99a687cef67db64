"""Pix2Pix and CycleGAN on the runner: a smoke run per family x data choice, one-line
errors, per-phase isolation of four nets, exact resume (the image pool included), bf16,
the translation metrics, and a short seeded Pix2Pix run that keeps the digits' classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from conftest import (
    MNIST_ROOT,
    TRAINING_ONLY,
    assert_one_error_line,
    loaded_after,
    run_cli,
    run_train,
)
from ganlab.errors import UserError
from ganlab.train import build, compose_config

TINY = ["model.generator.width=8", "model.discriminator.width=8", "trainer=cpu", "threads=1"]
NO_METRICS = ["~callbacks.translation", "~callbacks.metrics"]
MNIST = [f"data.base.root={MNIST_ROOT}", "data.base.download=false"]
MNIST_DOMAIN = [f"data.root={MNIST_ROOT}", "data.download=false"]


def write_pairs(root: Path, n: int = 6) -> Path:
    """The pix2pix layout: train/ and val/ of A|B files (16 x 8 px, gray digit | RGB)."""
    from sklearn.datasets import load_digits

    images = (load_digits().images[: 2 * n] * 255 / 16).astype(np.uint8)
    for split, chunk in (("train", images[:n]), ("val", images[n:])):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(chunk):
            a = np.stack([image] * 3, axis=-1)
            b = np.stack([image, 255 - image, image // 2], axis=-1)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(root / split / f"{i}.png")
    return root


def write_domains(root: Path, n: int = 5) -> Path:
    """The CycleGAN layout: trainA/, trainB/, testA/, testB/ of small RGB images."""
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            colour = (200, 20 * i, 0) if folder.endswith("A") else (0, 20 * i, 200)
            Image.new("RGB", (10, 10), colour).save(root / folder / f"{i}.png")
    return root


def family_args(choice: str, tmp_path: Path) -> list[str]:
    """Overrides of each family x data choice of the smoke test."""
    return {
        "pix2pix/edges": ["family=pix2pix", "data=edges"],
        "pix2pix/super_resolution": ["family=pix2pix", "data=super_resolution", *MNIST],
        "pix2pix/inpainting": ["family=pix2pix", "data=inpainting", *MNIST],
        "pix2pix/colorization": ["family=pix2pix", "data=colorization", "data.base.size=500"],
        "pix2pix/paired_folder": ["family=pix2pix", "data=paired_folder", "data.image_size=16",
                                  f"data.path={write_pairs(tmp_path / 'pairs')}",
                                  "data.batch_size=2", "data.num_workers=0"],
        "cyclegan/digits2mnist": ["family=cyclegan", "data=digits2mnist", *MNIST_DOMAIN,
                                  "data.batch_size=4"],
        "cyclegan/unpaired_folder": ["family=cyclegan", "data=unpaired_folder",
                                     "data.image_size=16", "data.num_workers=0",
                                     f"data.path={write_domains(tmp_path / 'domains')}"],
    }[choice]  # fmt: skip


@pytest.mark.parametrize(
    "choice",
    [
        "pix2pix/edges",
        "pix2pix/super_resolution",
        "pix2pix/inpainting",
        "pix2pix/colorization",
        "pix2pix/paired_folder",
        "cyclegan/digits2mnist",
        "cyclegan/unpaired_folder",
    ],
)
def test_smoke_run_per_family_and_data(choice, tmp_path):
    summary = run_train(tmp_path / "run", *family_args(choice, tmp_path), *TINY, *NO_METRICS,
                        "steps=3", "sample_every=3", "log_every=1")  # fmt: skip
    assert summary["status"] == "completed" and summary["steps"] == 3
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    expected = ["grid_0000003.png"] + (["grid_ba_0000003.png"] if "cyclegan" in choice else [])
    assert grids == expected
    rows = (tmp_path / "run" / "metrics.csv").read_text()
    assert "train/g_loss" in rows and "train/grad_norm/d" in rows


def test_pix2pix_grid_shows_input_output_target_columns(tmp_path):
    run_train(tmp_path, "family=pix2pix", *TINY, *NO_METRICS, "steps=2", "sample_every=2",
              "callbacks.samples.n=40", "callbacks.samples.columns=8")  # fmt: skip
    grid = Image.open(tmp_path / "samples" / "grid_0000002.png")
    assert grid.size == (3 * 34 + 2, 5 * 34 + 2)  # 5 validation pairs, 3 columns of 32 px


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["family=pix2pix", "data=mnist"],
         "error: pix2pix needs paired images (input, target), but data=mnist gives images: "
         "choose data=colorization|edges|inpainting|paired_folder|super_resolution"),
        (["family=cyclegan", "data=digits"],
         "error: cyclegan needs two unpaired image domains, but data=digits gives images: "
         "choose data=digits2mnist|unpaired_folder"),
        (["family=pix2pix", "data=colorization", "data.base._target_=ganlab.data.images.Digits",
          "~data.base.size"], "error: colorization needs"),
        (["family=pix2pix", "data=paired_folder", "data.path=/nonexistent/facades"],
         "error: /nonexistent/facades"),
    ],
)  # fmt: skip
def test_family_mistakes_are_one_line_before_training(args, message, tmp_path):
    result = run_cli(*args, "logger=csv", *TINY, cwd=tmp_path)
    assert_one_error_line(result, message)
    assert "train (G steps)" not in result.stderr


def test_pix2pix_on_latent_data_in_process_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="pix2pix needs paired images"):
        run_train(tmp_path, "family=pix2pix", "data=ring8", *TINY)


def snapshot(nets) -> list[torch.Tensor]:
    return [p.detach().clone() for net in nets for p in net.parameters()]


def test_each_cyclegan_phase_changes_only_its_own_two_nets(tmp_path):
    cfg = compose_config(
        [
            "logger=csv",
            "family=cyclegan",
            "data=unpaired_folder",
            f"data.path={write_domains(tmp_path / 'd')}",
            "data.image_size=16",
            "data.num_workers=0",
            "steps=2",
            *TINY,
            *NO_METRICS,
        ],
        tmp_path / "r",
    )
    trainer, module, datamodule = build(cfg)  # fmt: skip
    family = module.family
    nets = family.optimized_nets()
    assert {k: len(v) for k, v in nets.items()} == {"g": 2, "d": 2}
    seen, update = [], module._update

    def checked(phase, item, opt, ctx):
        own, other = nets[phase.optimizer], nets["d" if phase.optimizer == "g" else "g"]
        own0, other0 = snapshot(own), snapshot(other)
        out = update(phase, item, opt, ctx)
        assert all(torch.equal(a, b) for a, b in zip(other0, snapshot(other), strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(own0, snapshot(own), strict=True))
        seen.append(phase.name)
        return out

    module._update = checked
    trainer.fit(module, datamodule=datamodule)
    assert seen == ["g", "d", "g", "d"]  # the reference order: G, then D on G's fakes


def test_image_pool_returns_new_images_then_mixes_history():
    from ganlab.families.cyclegan import ImagePool

    pool, gen = ImagePool(4, (1, 2, 2)), torch.Generator().manual_seed(0)
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    assert torch.equal(pool.query(first, gen), first) and pool.filled == 3
    second = torch.full((6, 1, 2, 2), 9.0)
    out = pool.query(second, gen)
    assert pool.filled == 4 and torch.equal(out[0], second[0])  # the last free slot
    assert set(out[1:, 0, 0, 0].tolist()) <= {0.0, 1.0, 2.0, 9.0}
    assert (out[1:, 0, 0, 0] != 9).any() and (out[1:, 0, 0, 0] == 9).any()  # half swapped
    state = pool.state_dict()
    restored = ImagePool(4, (1, 2, 2))
    restored.load_state_dict(state)
    assert restored.filled == 4 and torch.equal(restored.images, pool.images)


def params(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan"])
def test_translation_run_resumes_exactly(family, tmp_path):
    """Dropout (pix2pix) and the image pools (cyclegan, 3 images: full after one step) come
    back from the checkpoint: 6 steps + resume + 6 equal 12."""
    data = (["data=paired_folder", f"data.path={write_pairs(tmp_path / 'p')}"]
            if family == "pix2pix" else
            ["data=unpaired_folder", f"data.path={write_domains(tmp_path / 'd')}",
             "family.pool_size=3"])  # fmt: skip
    args = [f"family={family}", *data, "data.image_size=16", "data.batch_size=2",
            "data.num_workers=0", *TINY, *NO_METRICS, "steps=12", "sample_every=100",
            "ckpt_every=100"]  # fmt: skip
    run_train(tmp_path / "full", *args)
    interrupt = [
        "+callbacks.interrupt._target_=conftest.InterruptAt",
        "+callbacks.interrupt.step=6",
    ]
    assert run_train(tmp_path / "split", *args, *interrupt)["steps"] == 6
    assert run_train(tmp_path / "split", *args, "resume=auto")["steps"] == 12
    a, b = params(tmp_path / "full"), params(tmp_path / "split")
    assert a.keys() == b.keys()
    if family == "cyclegan":
        assert "family.pool_a.images" in a and int(a["family.pool_a.count"]) == 3
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_cyclegan_trains_in_bf16(tmp_path):
    summary = run_train(tmp_path, "family=cyclegan", "data=unpaired_folder", "data.image_size=16",
                        f"data.path={write_domains(tmp_path / 'd')}", "data.num_workers=0",
                        *TINY, *NO_METRICS, "steps=3", "trainer.precision=bf16-mixed")  # fmt: skip
    assert summary["status"] == "completed" and summary["steps"] == 3


def test_translation_metrics_are_logged_with_their_ceiling(tmp_path):
    summary = run_train(tmp_path / "p", "family=pix2pix", "data=super_resolution", *MNIST, *TINY,
                        "steps=2", "eval_every=2", "callbacks.translation.n_samples=64",
                        "callbacks.translation.n_real=256", "~callbacks.metrics")  # fmt: skip
    m = summary["metrics"]
    for key in ("l1", "psnr", "ssim", "psnr_input", "ssim_input", "fid", "kid", "label_acc",
                "classifier_acc", "label_rel"):  # fmt: skip
        assert f"val/{key}" in m, key
    assert m["val/classifier_acc"] > 0.98 and 0 <= m["val/label_acc"] <= 1
    assert m["val/label_rel"] == pytest.approx(m["val/label_acc"] / m["val/classifier_acc"])
    assert m["val/psnr_input"] > m["val/psnr"]  # an untrained G is worse than bicubic
    assert (tmp_path / "p" / "checkpoints" / "best.ckpt").is_file()  # by val/psnr


@pytest.mark.slow
def test_pix2pix_edges_to_digits_keeps_the_class(tmp_path):
    """A short seeded Pix2Pix run on edges -> digits: the digits classifier gives the
    input's class to most outputs (chance: 10 %)."""
    summary = run_train(tmp_path, "family=pix2pix", "data=edges", "steps=300", "eval_every=300",
                        "model.generator.width=16", "model.discriminator.width=16",
                        "trainer=cpu", "callbacks.translation.n_samples=359",
                        "callbacks.translation.n_real=1438", "~callbacks.metrics")  # fmt: skip
    m = summary["metrics"]
    print(json.dumps(summary, indent=1))
    assert summary["status"] == "completed", summary
    assert m["val/label_acc"] > 0.5


def test_translate_command_translates_a_folder(tmp_path, capsys):
    from ganlab.translate import main

    run_train(tmp_path / "run", "family=pix2pix", *TINY, *NO_METRICS, "steps=2")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    images = tmp_path / "in" / "sub"
    images.mkdir(parents=True)
    for i in range(3):  # any size and mode: resized and converted to the model's input
        Image.new("RGB" if i else "L", (40 + i, 36), (255, 255, 255) if i else 255).save(
            images / f"{i}.jpg"
        )
    main([f"ckpt={ckpt}", f"input={tmp_path / 'in'}", f"out={tmp_path / 'out'}"])
    written = sorted((tmp_path / "out" / "sub").iterdir())
    assert [p.name for p in written] == ["0.png", "1.png", "2.png"]
    assert all(Image.open(p).size == (32, 32) for p in written)
    assert "wrote 3 images" in capsys.readouterr().out
    for argv, message in (
        ([f"ckpt={ckpt}", f"input={tmp_path / 'in'}", "direction=ba"], "pix2pix translates ab"),
        ([f"ckpt={ckpt}"], "input=FOLDER is required"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
    # in a process of its own, the command imports no Lightning, W&B or torchvision
    code = f"from ganlab.translate import main\nmain({[f'ckpt={ckpt}', f'input={images}']!r})"
    code = f"import os\nos.chdir({str(tmp_path)!r})\n" + code  # writes ./translated
    assert loaded_after(code, (*TRAINING_ONLY, "torchvision")) == []


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("pix2pix_edges2digits", []),
        ("pix2pix_sr_mnist", MNIST),
        ("cyclegan_digits2mnist", MNIST_DOMAIN),
        ("pix2pix_facades", ["data.image_size=32", "data.num_workers=0"]),
        ("cyclegan_horse2zebra", ["data.image_size=32", "data.num_workers=0"]),
    ],
)
def test_translation_experiments_smoke_run(name, extra, tmp_path):
    """Every translation experiment composes and trains (the published-settings ones on a
    small folder of the same layout, at 32 px)."""
    folder = {"pix2pix_facades": write_pairs, "cyclegan_horse2zebra": write_domains}.get(name)
    paths = [f"data.path={folder(tmp_path / 'files')}"] if folder else []
    summary = run_train(tmp_path / "run", f"experiment={name}", *extra, *paths, *TINY,
                        *NO_METRICS, "steps=2", "data.batch_size=2")  # fmt: skip
    assert summary["status"] == "completed" and summary["steps"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "swept", "metric"),
    [
        ("pix2pix_edges2digits", "family.l1_weight=100,0", "val/label_acc"),
        ("cyclegan_digits2mnist", "family.cycle_weight=10,5", "val/ab/label_acc"),
    ],
)
def test_a_translation_sweep_ends_in_its_table_and_report(experiment, swept, metric, tmp_path):
    """``python -m ganlab -m experiment=... <a swept value>``: one job per value, each scored
    with the family's metrics, the sweep's table and report.html at the end."""
    extra = MNIST_DOMAIN if experiment.startswith("cyclegan") else []
    sweep = tmp_path / "sweep"
    result = run_cli("-m", f"experiment={experiment}", swept, *extra, *TINY, "steps=4",
                     "eval_every=4", "sample_every=4", "data.batch_size=4", "logger=csv",
                     "callbacks.translation.n_samples=16", "callbacks.translation.n_real=32",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = json.loads((sweep / "sweep_summary.json").read_text())
    assert [job["status"] for job in jobs] == ["completed", "completed"], jobs
    assert all(metric in job["metrics"] for job in jobs), jobs
    # optimized_metric is checked against the declared keys: they hold what the jobs logged
    from test_logged_keys import declared

    keys = declared([f"experiment={experiment}", *extra, *TINY], tmp_path / "built")
    assert all({k for k in job["metrics"] if k.startswith("val/")} <= keys for job in jobs)
    assert (sweep / "report.html").is_file()
    assert f"report: {sweep / 'report.html'}" in result.stdout + result.stderr
