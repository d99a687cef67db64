"""Image GANs end to end: smoke runs per model x data, sample grids, config validation,
bf16 mixed precision, exact resume, and a conditional run that follows its labels."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from conftest import MNIST_ROOT, assert_one_error_line, run_cli, run_train
from ganlab.errors import UserError
from ganlab.train import build, compose_config

HAS_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST files under {MNIST_ROOT}")
SMALL = [
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer=smoke",
    "~callbacks.metrics",
]


def digit_folder(root: Path, n: int = 40) -> Path:
    """A folder of real digit images as PNG (gray, RGB and RGBA, two sizes) and JPEG."""
    from sklearn.datasets import load_digits

    root.mkdir(parents=True, exist_ok=True)
    images = load_digits().images[:n] * 255 / 16
    for i, image in enumerate(images.astype(np.uint8)):
        picture = Image.fromarray(image).resize((12 + 4 * (i % 2), 12), Image.BILINEAR)
        jpeg = i % 5 == 4
        mode = ("L", "RGB")[i % 2] if jpeg else ("L", "RGB", "RGBA")[i % 3]
        picture.convert(mode).save(root / f"digit_{i}.{'jpg' if jpeg else 'png'}")
    return root


def data_args(data: str, tmp_path: Path) -> list[str]:
    if data in ("mnist", "stacked_mnist"):
        return [f"data={data}", f"data.root={MNIST_ROOT}", "data.download=false"]
    if data == "folder":
        path = digit_folder(tmp_path / "images")
        return ["data=folder", f"data.path={path}", "data.image_size=16", "data.num_workers=2"]
    return [f"data={data}", "data.image_size=16"]


IMAGE_MODELS = ("dcgan", "resnet", "small_dcgan")
IMAGE_DATA = ("digits", "stacked_digits", "mnist", "stacked_mnist", "fashion_mnist", "cifar10",
              "folder")  # fmt: skip
STACKED_QUARTER = (
    "stacked_mnist_quarter_dcgan",
    "stacked_mnist_quarter_unrolled",
    "stacked_mnist_quarter_pacgan",
)  # PacGAN table 3's hard setting
IMAGE_EXPERIMENTS = ("dcgan_digits", "dcgan_digits_best", "dcgan_digits_small", "cgan_digits",
                     "wgan_gp_resnet_digits", "dcgan_mnist", "stacked_mnist_dcgan",
                     *STACKED_QUARTER)  # fmt: skip
DATA = [
    "digits",
    "stacked_digits",
    pytest.param("mnist", marks=needs_mnist),
    pytest.param("stacked_mnist", marks=needs_mnist),
    "folder",
]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", ["dcgan", "resnet", "small_dcgan"])
def test_smoke_run_per_model_and_data(model, data, tmp_path):
    summary = run_train(tmp_path, f"model={model}", *data_args(data, tmp_path), *SMALL)
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    size = 32 if data in ("mnist", "stacked_mnist") else 16
    grid = Image.open(tmp_path / "samples" / "grid_0000020.png")
    assert grid.size == (8 * (size + 2) + 2, 8 * (size + 2) + 2)  # 64 images, 8 per row
    strip = Image.open(tmp_path / "samples" / "interpolation_0000020.png")
    assert strip.size == (10 * (size + 2) + 2, 4 * (size + 2) + 2)  # 4 walks of 10 images


@pytest.mark.parametrize("model", ["dcgan", "resnet"])
def test_conditional_grid_has_one_row_per_class(model, tmp_path):
    summary = run_train(tmp_path, f"model={model}", "model.conditional=true", "data=digits",
                        "data.image_size=16", *SMALL)  # fmt: skip
    assert summary["status"] == "completed"
    grid = Image.open(tmp_path / "samples" / "grid_0000020.png")
    assert grid.size == (8 * 18 + 2, 10 * 18 + 2)  # 10 classes x 8 columns


def test_every_experiment_composes_and_image_ones_smoke_run(tmp_path):
    for name in ("dcgan_digits", "dcgan_digits_best", "dcgan_digits_small", "cgan_digits",
                 "wgan_gp_resnet_digits"):  # fmt: skip
        summary = run_train(tmp_path / name, f"experiment={name}", *SMALL, "data.image_size=16")
        assert summary["status"] == "completed", name


@needs_mnist
@pytest.mark.parametrize("name", ["dcgan_mnist", "stacked_mnist_dcgan", *STACKED_QUARTER])
def test_mnist_experiments_smoke_run(name, tmp_path):
    root = [f"data.root={MNIST_ROOT}", "data.download=false"]
    summary = run_train(tmp_path, f"experiment={name}", *SMALL, *root)
    assert summary["status"] == "completed"


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["model=dcgan", "data=ring8"],
            "error: model=dcgan generates images but data=ring8 holds vectors",
        ),
        (["data=digits"], "error: model=mlp generates vectors (points) but data=digits holds"),
        (
            ["model=dcgan", "data=digits", "data.image_size=28"],
            "error: DCGANGenerator: image_size must be one of 16, 32, 64, got 28",
        ),
    ],
)
def test_incompatible_choices_fail_in_one_line_before_training(args, message, tmp_path):
    result = run_cli(*args, "logger=csv", cwd=tmp_path)
    assert_one_error_line(result, message)
    assert "train (G steps)" not in result.stderr  # nothing was trained


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=dcgan", "model.conditional=true", "data=folder"], "model.conditional=true needs"),
        (["model=resnet", "data=ring8"], "model=resnet generates images but data=ring8"),
        (["model=dcgan", "data=digits", "loss=wgan_gp"], "loss=wgan_gp with GradientPenalty"),
        (["model=mlp", "model.conditional=true"], "model.conditional=true needs labelled data"),
    ],
)
def test_more_incompatible_choices(args, message, tmp_path):
    if "data=folder" in args:
        args = [*args, f"data.path={digit_folder(tmp_path / 'images', n=3)}"]
    with pytest.raises(UserError, match=message):
        run_train(tmp_path, *args, "trainer=smoke")


def test_missing_mnist_files_are_one_line(tmp_path):
    result = run_cli("model=dcgan", "data=mnist", f"data.root={tmp_path}", "data.download=false",
                     cwd=tmp_path)  # fmt: skip
    assert_one_error_line(result, f"error: MNIST not found in {tmp_path / 'MNIST' / 'raw'}")


# ---------------------------------------------------------------- precision, resume
def fit(run_dir: Path, *overrides: str):
    """Build and train in this process; returns the trained module."""
    cfg = compose_config(["logger=csv", *overrides], run_dir)
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return module


def test_bf16_mixed_precision_trains_with_manual_optimization(tmp_path):
    args = ["model=dcgan", "data=digits", "data.image_size=16", *SMALL, "ema=0"]
    bf16 = fit(tmp_path / "bf16", *args, "trainer.precision=bf16-mixed")
    fp32 = fit(tmp_path / "fp32", *args)
    assert bf16.status == "running" and bf16.g_step == 20
    assert all(p.dtype == torch.float32 for p in bf16.parameters())  # master weights stay fp32
    assert all(torch.isfinite(p).all() for p in bf16.parameters())
    for key in ("d_loss", "g_loss", "grad_norm/d", "grad_norm/g"):
        assert torch.isfinite(bf16.last[key]), key
    # the same seeded run differs in bf16: autocast was on
    diff = (bf16.family.generator.out.weight - fp32.family.generator.out.weight).abs().max()
    assert 0 < diff < 0.1


def test_image_run_resumes_exactly(tmp_path):
    # conditional DCGAN with BatchNorm (running statistics), EMA, n_critic 2 (the data stream)
    args = ["model=dcgan", "data=digits", "data.image_size=16", "model.conditional=true",
            "model.generator.width=8", "model.discriminator.width=8", "trainer=cpu", "n_critic=2",
            "steps=30", "ckpt_every=1000", "sample_every=1000", "log_every=5"]  # fmt: skip
    run_train(tmp_path / "full", *args)
    interrupt = [
        "+callbacks.interrupt._target_=conftest.InterruptAt",
        "+callbacks.interrupt.step=13",
    ]
    first = run_train(tmp_path / "split", *args, *interrupt)
    # the signal arrives in step 13's callbacks; the checkpoint callback runs last and saves
    assert first["status"] == "interrupted" and first["steps"] == 13
    second = run_train(tmp_path / "split", *args, "resume=auto")
    assert second["status"] == "completed" and second["steps"] == 30
    a, b = params(tmp_path / "full"), params(tmp_path / "split")
    assert any("ema.generator" in k for k in a) and any("running_mean" in k for k in a)
    for key in a:
        assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def params(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def digits_classifier(datamodule):
    """Logistic regression on the real digits at 8x8 (the images' own resolution, reached
    by average pooling), with its held-out accuracy."""
    from sklearn.linear_model import LogisticRegression

    def features(images: torch.Tensor) -> np.ndarray:
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float().cpu(), 8)
        return pooled.flatten(1).numpy()

    x, y = datamodule.real_images("train")
    x_test, y_test = datamodule.real_images("test")
    classifier = LogisticRegression(max_iter=3000).fit(features(x), y.numpy())
    held_out = classifier.score(features(x_test), y_test.numpy())
    return lambda images: classifier.predict(features(images)), held_out


@pytest.mark.slow
def test_conditional_samples_follow_their_labels(tmp_path):
    """A short seeded conditional DCGAN run on digits: a digits classifier labels its
    samples as the requested class far more often than chance (10 %)."""
    cfg = compose_config(
        ["logger=csv", "experiment=cgan_digits", "data.image_size=16", "steps=600",
         "model.generator.width=16", "model.discriminator.width=16", "trainer=cpu"],
        tmp_path,
    )  # fmt: skip
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    classify, held_out = digits_classifier(datamodule.data)
    assert held_out > 0.9  # the judge itself is reliable
    requested = torch.arange(1000) % 10
    samples = module.family.generate(1000, y=requested)
    agreement = float((torch.as_tensor(classify(samples)) == requested).float().mean())
    print(f"conditional agreement {agreement:.3f} (chance 0.1), classifier {held_out:.3f}")
    assert agreement > 0.5
