"""Paired (Pix2Pix) and unpaired (CycleGAN) data built from image sets: tasks, batches,
labels, independent streams, exact resume (folders: test_translation_folders.py)."""

import re

import pytest
import torch

from conftest import MNIST_ROOT
from ganlab.data.images import MNIST, Digits, StackedDigits
from ganlab.data.paired import PairedImages
from ganlab.data.paired_tasks import (
    Colorization,
    Edges,
    Inpainting,
    SuperResolution,
    bicubic_baseline,
    luma,
)
from ganlab.data.sampling import IndexStream, to_float
from ganlab.data.unpaired import Digits2MNIST, UnpairedImages
from ganlab.errors import UserError
from ganlab.rng import stream_seed

needs_mnist = pytest.mark.skipif(
    not (MNIST_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file(),
    reason=f"MNIST raw files not in {MNIST_ROOT}/MNIST/raw",
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def paired(task, size: int = 16, base=None, per_step: int = 1, **kwargs) -> PairedImages:
    base = base or Digits(image_size=size)
    return PairedImages(base, task, **{"batch_size": 8, **kwargs}).serve(6, per_step)


def assert_batches_equal(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def resume_matches(make, k: int) -> None:
    """k items from one loader, its state into a fresh module's loader: the rest equals an
    uninterrupted run."""
    full = list(make().train_dataloader())
    loader = make().train_dataloader()
    it = iter(loader)
    head = [next(it) for _ in range(k)]
    assert loader.state_dict() == {"position": k}
    resumed = make().train_dataloader()
    resumed.load_state_dict(loader.state_dict())
    assert_batches_equal(full, head + list(resumed))


# ---------------------------------------------------------------- tasks


def square(size: int = 16, lo: int = 4, hi: int = 12) -> torch.Tensor:
    """uint8 (1, 1, size, size): a white square [lo, hi) on black."""
    x = torch.zeros(1, 1, size, size, dtype=torch.uint8)
    x[..., lo:hi, lo:hi] = 255
    return x


def test_edges_mark_the_border_of_a_square_only():
    edges = Edges(0.2)(square())
    assert edges.shape == (1, 1, 16, 16) and set(edges.unique().tolist()) == {0, 255}
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[3:13, 3:13] = True  # the pixels on both sides of the step
    expected[5:11, 5:11] = False  # the flat inside
    assert torch.equal(edges[0, 0] == 255, expected)
    assert Edges(0.2)(torch.full((1, 1, 8, 8), 200, dtype=torch.uint8)).max() == 0  # flat


def test_super_resolution_input_is_the_bicubic_baseline():
    dm = paired(SuperResolution(4), size=32)
    val = dm.val_items(20)
    assert torch.equal(val["input"], bicubic_baseline(val["target"], 4))
    x = square(16, 4, 12)  # block-constant on the 4x4 grid: the low-res image is exact
    low = torch.nn.functional.avg_pool2d(x.float(), 4)
    assert set(low.unique().tolist()) == {0.0, 255.0}
    flat = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(SuperResolution(4)(flat), flat)  # bicubic keeps a constant image
    assert not torch.equal(val["input"], val["target"])  # detail is lost


def test_inpainting_masks_the_centre_square_only():
    task = Inpainting(fraction=0.5, fill=128)
    mask = task.mask(16)
    assert mask.sum() == 64 and mask[4:12, 4:12].all()
    val = paired(task).val_items(10)
    inside = val["input"][..., mask]
    assert torch.equal(inside, torch.full_like(inside, to_float(torch.tensor(128)).item()))
    assert torch.equal(val["input"][..., ~mask], val["target"][..., ~mask])


def test_colorization_input_is_the_luma_of_an_rgb_target():
    base = StackedDigits(image_size=16, size=200)
    dm = paired(Colorization(), base=base)
    assert dm.in_channels == 1 and dm.spec.shapes == {"input": (1, 16, 16), "target": (3, 16, 16)}
    val = dm.val_items(10)
    expected = luma((val["target"] + 1) * 127.5).round() / 127.5 - 1
    torch.testing.assert_close(val["input"], expected, atol=1e-5, rtol=0)


def test_colorization_refuses_a_grayscale_base_in_one_line():
    with pytest.raises(UserError) as err:
        paired(Colorization())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("colorization needs an RGB base set, but Digits has 1 channel")


def test_super_resolution_needs_a_divisible_size():
    with pytest.raises(UserError, match=re.escape("x3 needs an image_size divisible by 3, got 16")):
        paired(SuperResolution(3))


# ---------------------------------------------------------------- paired data from a base set


@pytest.mark.parametrize("task", [Edges(), SuperResolution(), Inpainting()], ids=lambda t: t.name)
def test_paired_batches_shapes_ranges_and_labels(task):
    dm = paired(task, per_step=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (2, 8, dm.in_channels, 16, 16)
    assert batch["target"].shape == (2, 8, 1, 16, 16) and batch["label"].shape == (2, 8)
    for key in ("input", "target"):
        assert batch[key].dtype == torch.float32 and batch[key].abs().max() <= 1
    assert batch["label"].dtype == torch.int64
    spec = dm.spec
    assert (spec.kind, spec.num_classes, spec.classifier) == ("pairs", 10, "digits")
    assert spec.shapes["target"] == (1, 16, 16)


def test_paired_targets_and_labels_are_the_base_images():
    dm = paired(Edges())
    val = dm.val_items(30)
    x, y = Digits(image_size=16).real_images("test", 30)
    assert torch.equal(val["target"], x) and torch.equal(val["label"], y)
    assert torch.equal(dm.real_images("test", 30)[0], x)
    assert torch.equal(dm.val_items(30)["input"], val["input"])  # fixed
    # a training batch follows the base set's stream: same indices, same images
    batch = next(iter(dm.train_dataloader()))
    idx = IndexStream(len(dm.source("train")), 8, stream_seed(0, 0), "cpu").indices(0)
    base_x, base_y = Digits(image_size=16).real_images("train")
    assert torch.equal(batch["target"][0], base_x[idx]) and torch.equal(
        batch["label"][0], base_y[idx]
    )


def test_paired_stream_is_seeded_and_resumes_exactly():
    def make(seed=3):
        return paired(Inpainting(), per_step=2, seed=seed)

    assert_batches_equal(list(make().train_dataloader()), list(make().train_dataloader()))
    other = next(iter(make(4).train_dataloader()))
    assert not torch.equal(other["target"], next(iter(make().train_dataloader()))["target"])
    resume_matches(make, 4)


@needs_mnist
def test_paired_mnist_base():
    base = MNIST(image_size=32, root=str(MNIST_ROOT), download=False)
    dm = paired(SuperResolution(4), base=base)
    assert dm.spec.classifier == "mnist"
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (1, 8, 1, 32, 32) and batch["label"].shape == (1, 8)


# ---------------------------------------------------------------- unpaired data


def two_digit_domains(**kwargs) -> UnpairedImages:
    options = {"batch_size": 8, "seed": 1, **kwargs}
    return UnpairedImages(Digits(image_size=16), Digits(image_size=16), **options).serve(6, 2)


def test_domains_are_drawn_by_independent_streams():
    dm = two_digit_domains()
    batches = list(dm.train_dataloader())
    assert batches[0]["a"].shape == (2, 8, 1, 16, 16) and batches[0]["label_b"].shape == (2, 8)
    a = torch.cat([b["a"].flatten(0, 1) for b in batches])
    b = torch.cat([b["b"].flatten(0, 1) for b in batches])
    assert not (a == b).flatten(1).all(1).any()  # the same set, never the same image at once
    n = len(dm.source("train").a)
    stream_a = IndexStream(n, 16, stream_seed(1, 0, 0), "cpu")
    stream_b = IndexStream(n, 16, stream_seed(1, 0, 1), "cpu")
    x, _ = Digits(image_size=16).real_images("train")
    assert torch.equal(batches[2]["a"].flatten(0, 1), x[stream_a.indices(2)])
    assert torch.equal(batches[2]["b"].flatten(0, 1), x[stream_b.indices(2)])


def test_domains_resume_exactly_and_hold_out_a_fixed_set():
    resume_matches(two_digit_domains, 3)
    dm = two_digit_domains()
    val = dm.val_items(12)
    assert set(val) == {"a", "b", "label_a", "label_b"} and val["a"].shape == (12, 1, 16, 16)
    x, y = Digits(image_size=16).real_images("test", 12)
    assert torch.equal(val["a"], x) and torch.equal(val["label_b"], y)
    xa, ya = dm.real_images("test", 5, domain="a")
    assert torch.equal(xa, x[:5]) and torch.equal(ya, y[:5])
    with pytest.raises(ValueError, match="domain must be one of"):
        dm.real_images("test", 5, domain="c")


def test_domains_need_the_same_size():
    with pytest.raises(UserError, match="the two domains need the same image_size, got 16"):
        UnpairedImages(Digits(image_size=16), Digits(image_size=32))


@needs_mnist
def test_digits2mnist():
    dm = Digits2MNIST(batch_size=4, image_size=32, root=str(MNIST_ROOT), download=False).serve(3)
    spec = dm.spec
    assert spec.kind == "domains" and spec.classifiers == {"a": "digits", "b": "mnist"}
    assert spec.shapes == {"a": (1, 32, 32), "b": (1, 32, 32)} and spec.num_classes == 10
    batch = next(iter(dm.train_dataloader()))
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        "a": (1, 4, 1, 32, 32), "label_a": (1, 4), "b": (1, 4, 1, 32, 32), "label_b": (1, 4),
    }  # fmt: skip
    xb, yb = dm.real_images("train", 6)  # domain B by default: MNIST's first training images
    mnist_x, mnist_y = MNIST(image_size=32, root=str(MNIST_ROOT)).real_images("train", 6)
    assert torch.equal(xb, mnist_x) and torch.equal(yb, mnist_y)
    assert len(dm.source("train").a) == 1438 and len(dm.source("train").b) == 60_000
