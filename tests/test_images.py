"""Image data modules: values, labels, the position-based stream, exact resume, errors."""

import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.testing import assert_close

from conftest import MNIST_ROOT
from ganlab.data.images import (
    CIFAR10,
    MNIST,
    Digits,
    FashionMNIST,
    StackedDigits,
    StackedMNIST,
    stratified_split,
)
from ganlab.data.sampling import IndexStream
from ganlab.errors import UserError
from ganlab.rng import stream_seed

needs_mnist = pytest.mark.skipif(
    not (MNIST_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file(),
    reason=f"MNIST raw files not in {MNIST_ROOT}/MNIST/raw",
)


def idx_file(name: str) -> np.ndarray:
    """A raw MNIST IDX file read directly (reference independent of torchvision)."""
    data = bytearray((MNIST_ROOT / "MNIST" / "raw" / name).read_bytes())  # writable
    if "images" in name:
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8)


def image_bytes(x: torch.Tensor) -> Counter:
    """Multiset of images (N, ...), for comparing sets of samples regardless of order."""
    return Counter(row.numpy().tobytes() for row in x.flatten(1))


# ---------------------------------------------------------------- the index stream


def test_stream_is_concatenated_seeded_permutations():
    stream = IndexStream(n_items=10, per_item=3, seed=7, device="cpu")
    got = torch.cat([stream.indices(p) for p in range(8)])  # 24 samples: 2.4 epochs
    expected = torch.cat(
        [
            torch.randperm(10, generator=torch.Generator().manual_seed(stream_seed(7, e)))
            for e in range(3)
        ]
    )
    assert torch.equal(got, expected[:24])
    for epoch in range(2):
        assert sorted(got[epoch * 10 : (epoch + 1) * 10].tolist()) == list(range(10))
    # any position can be regenerated out of order, items larger than the data set too
    assert torch.equal(IndexStream(10, 3, 7, "cpu").indices(5), got[15:18])
    big = IndexStream(4, 9, 1, "cpu").indices(1)  # samples 9..17 span epochs 2, 3 and 4
    assert len(big) == 9 and sorted(big[3:7].tolist()) == [0, 1, 2, 3]


# ---------------------------------------------------------------- digits


@pytest.mark.parametrize("size", [16, 32])
def test_digits_shapes_range_and_labels(size):
    dm = Digits(batch_size=8, image_size=size).serve(5, 3)
    assert (dm.channels, dm.num_classes, dm.image_shape) == (1, 10, (1, size, size))
    loader = dm.train_dataloader()
    items = list(loader)
    assert len(loader) == len(items) == 5
    x, y = items[0]
    assert x.shape == (3, 8, 1, size, size) and x.dtype == torch.float32
    assert y.shape == (3, 8) and y.dtype == torch.int64
    xs, ys = torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])
    assert xs.min() == -1 and xs.max() == 1  # digits have blank (0) and full (16) pixels
    assert set(ys.unique().tolist()) <= set(range(10)) and len(ys.unique()) > 5


def test_digits_values_are_the_sklearn_digits_scaled():
    dm = Digits(image_size=8, holdout=0.2)
    x, y = dm.real_images("train")
    data = load_digits()
    train, _ = stratified_split(torch.from_numpy(data.target), 0.2, seed=1797)
    ref = torch.from_numpy(data.images[train.numpy()]).float() / 8 - 1  # 0..16 -> [-1, 1]
    assert_close(x[:, 0], ref, atol=0.5 / 127.5 + 1e-6, rtol=0)  # stored as uint8
    assert torch.equal(y, torch.from_numpy(data.target[train.numpy()]).long())
    assert x.shape == (1438, 1, 8, 8)  # 359 held out: 20 % of each class, rounded
    assert torch.equal(dm.real_images("train", 5)[1], y[:5])


def test_digits_epoch_visits_every_training_image_once():
    dm = Digits(batch_size=100, image_size=8, seed=3).serve(30)
    x = torch.cat([batch[0] for batch, _ in dm.train_dataloader()])  # (3000, 1, 8, 8)
    train, _ = dm.real_images("train")
    n = len(train)
    assert image_bytes(x[:n]) == image_bytes(train)  # epoch 1: a permutation
    assert image_bytes(x[n : 2 * n]) == image_bytes(train)  # epoch 2 too
    assert not torch.equal(x[:n], x[n : 2 * n])  # in another order


def test_holdout_is_disjoint_stratified_and_fixed():
    labels = torch.from_numpy(load_digits().target).long()
    train, test = stratified_split(labels, 0.2, seed=1797)
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))
    for c in range(10):
        count = int((labels == c).sum())
        assert int((labels[test] == c).sum()) == round(0.2 * count)
    a, b = Digits(seed=0, image_size=8), Digits(seed=9, image_size=8)
    xa, ya = a.real_images("test")
    assert len(xa) == len(test) and torch.equal(ya, labels[test])
    assert torch.equal(xa, b.real_images("test")[0])  # independent of the run seed
    train_images = image_bytes(a.real_images("train")[0])
    assert not set(image_bytes(xa)) & set(train_images)  # no test image is in train


def test_in_memory_resume_is_exact():
    def make():
        return Digits(batch_size=16, image_size=16, seed=4).serve(12, 2)

    full = list(make().train_dataloader())
    loader = make().train_dataloader()
    it = iter(loader)
    head = [next(it) for _ in range(5)]
    state = loader.state_dict()
    assert state == {"position": 5}
    resumed = make().train_dataloader()
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert len(tail) == 7
    for (xa, ya), (xb, yb) in zip(full, head + tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_ranks_and_seeds_give_different_streams():
    def first(seed, rank):
        data = Digits(batch_size=32, seed=seed, image_size=8).serve(2)
        loader = data.train_dataloader(rank=rank)
        return loader, next(iter(loader))[0]

    l00, x00 = first(0, 0)
    l01, x01 = first(0, 1)
    _, x10 = first(1, 0)
    assert l00.stream.seed == stream_seed(0, 0) and l01.stream.seed == stream_seed(0, 1)
    assert not torch.equal(x00, x01) and not torch.equal(x00, x10)
    assert torch.equal(x00, first(0, 0)[1])


def python_calls_per_batch(batch_size: int) -> int:
    """Python function calls the digits loader makes for one batch (after the first)."""
    it = iter(Digits(batch_size=batch_size, image_size=32).serve(600).train_dataloader())
    next(it)
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        next(it)
    finally:
        sys.setprofile(None)
    return calls


def test_digits_batches_cost_no_python_per_sample():
    """A batch is one index into the device tensor: the Python work does not grow with the
    batch (a per-sample Dataset would make 256 calls more). Its time (well under a millisecond
    on the CPU) is a benchmark's business, not a test's: wall clocks vary on a loaded machine."""
    small, large = python_calls_per_batch(64), python_calls_per_batch(256)
    assert small == large and small < 40, (small, large)


def test_bad_options_are_value_errors():
    for kwargs, words in [
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"image_size": 0}, "image_size must be a positive"),
        ({"image_size": 4}, "image_size must be >= 8"),
        ({"holdout": 1.0}, "holdout must be in [0, 1)"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            Digits(**kwargs)
    for steps, per_step, words in [(0, 1, "steps must be >= 1"), (1, 0, "n_critic must be >= 1")]:
        with pytest.raises(ValueError, match=re.escape(words)):
            Digits().serve(steps, per_step)
    with pytest.raises(ValueError, match="split must be one of"):
        Digits().real_images("val")
    with pytest.raises(ValueError, match="n=5000 but the train split has 1438"):
        Digits().real_images("train", 5000)
    with pytest.raises(UserError, match="holdout=0 leaves no images for 'test'"):
        Digits(holdout=0).real_images("test")


def test_the_run_length_is_the_runners_not_the_datas():
    """A data module describes data; how long it is drawn from is set by ``serve`` (from
    the run's steps and the family's batches per step), never by its constructor."""
    with pytest.raises(TypeError, match="steps"):
        Digits(steps=5)
    dm = Digits(batch_size=4, image_size=8)
    with pytest.raises(RuntimeError, match=r"serve\(steps, per_step\) before"):
        dm.train_dataloader()
    assert len(list(dm.serve(steps=3, per_step=2).train_dataloader())) == 3
    assert next(iter(dm.serve(steps=1, per_step=4).train_dataloader()))[0].shape[:2] == (4, 4)


# ---------------------------------------------------------------- stacked digits


def test_stacked_digits_channels_are_source_digits_with_matching_labels():
    dm = StackedDigits(batch_size=32, image_size=16, size=500).serve(2, 2)
    assert (dm.channels, dm.num_classes, dm.image_shape) == (3, 1000, (3, 16, 16))
    base_x, base_y = Digits(image_size=16).real_images("train")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 32, 3, 16, 16) and y.shape == (2, 32) and y.dtype == torch.int64
    x, y = x.flatten(0, 1), y.flatten()
    for c, weight in enumerate((100, 10, 1)):
        same = (x[:, c].flatten(1)[:, None] == base_x.flatten(1)[None]).all(-1)  # (64, N)
        assert same.any(dim=1).all()  # every channel is a training digit
        digit = y // weight % 10
        assert all(digit[i] in base_y[same[i]] for i in range(len(y)))
    # real images follow the fixed triples exactly
    triples = dm.source("train").triples
    assert len(triples) == 500
    rx, ry = dm.real_images("train", 10)
    assert torch.equal(rx[3, 1], base_x[triples[3, 1], 0])
    assert ry[3] == 100 * base_y[triples[3, 0]] + 10 * base_y[triples[3, 1]] + base_y[triples[3, 2]]


def test_stacked_set_is_fixed_across_run_seeds():
    a, b = StackedDigits(seed=0, size=100), StackedDigits(seed=1, size=100)
    assert torch.equal(a.source("train").triples, b.source("train").triples)
    c = StackedDigits(stack_seed=1, size=100)
    assert not torch.equal(a.source("train").triples, c.source("train").triples)
    assert len(StackedDigits().source("train")) == 50_000
    _, y = a.real_images("test")
    assert len(y) == 100 and y.max() < 1000 and len(y.unique()) > 50


# ---------------------------------------------------------------- torchvision sets


@needs_mnist
def test_mnist_shapes_and_values():
    dm = MNIST(root=str(MNIST_ROOT), batch_size=16).serve(3, 2)
    assert (dm.channels, dm.num_classes, dm.image_shape) == (1, 10, (1, 32, 32))
    dm.prepare_data()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 16, 1, 32, 32) and y.shape == (2, 16) and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    native = MNIST(root=str(MNIST_ROOT), image_size=28)
    tx, ty = native.real_images("test", 100)
    assert torch.equal(ty, torch.from_numpy(idx_file("t10k-labels-idx1-ubyte")[:100]).long())
    raw = torch.from_numpy(idx_file("t10k-images-idx3-ubyte")[:100].copy()).float()
    assert_close(tx[:, 0], raw / 127.5 - 1)
    assert native.real_images("train", 5)[1].tolist() == [5, 0, 4, 1, 9]


@needs_mnist
def test_stacked_mnist_channels_and_labels():
    dm = StackedMNIST(root=str(MNIST_ROOT), image_size=28, batch_size=8).serve(2)
    assert (dm.channels, dm.num_classes, dm.image_shape) == (3, 1000, (3, 28, 28))
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (1, 8, 3, 28, 28) and y.shape == (1, 8) and y.max() < 1000
    triples = dm.source("train").triples
    assert triples.shape == (128_000, 3)
    rx, ry = dm.real_images("train", 20)
    images = torch.from_numpy(idx_file("train-images-idx3-ubyte")[triples[:20].numpy()].copy())
    digits = torch.from_numpy(idx_file("train-labels-idx1-ubyte")[triples[:20].numpy()]).long()
    assert_close(rx, images.float() / 127.5 - 1)  # (20, 3, 28, 28)
    assert torch.equal(ry, digits @ torch.tensor([100, 10, 1]))


def test_mnist_missing_files_is_one_line_naming_the_folder(tmp_path):
    dm = MNIST(root=str(tmp_path), download=False)
    with pytest.raises(UserError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"MNIST not found in {tmp_path / 'MNIST' / 'raw'} (")
    assert "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images" in message
    assert "data.root / GANLAB_DATA" in message
    with pytest.raises(UserError, match="MNIST not found"):
        dm.setup("fit")  # the ranks that do not prepare fail the same way
    with pytest.raises(UserError, match=f"FashionMNIST not found in {tmp_path}/FashionMNIST/raw"):
        FashionMNIST(root=str(tmp_path), download=False).prepare_data()


def test_failed_download_says_so(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(
        UserError, match=r"raw and could not be downloaded \(no network\?\): put train"
    ):
        MNIST(root=str(tmp_path), download=True).prepare_data()


def test_cifar10_missing_files(tmp_path):
    dm = CIFAR10(root=str(tmp_path), download=False, num_workers=0)
    assert (dm.channels, dm.num_classes, dm.image_shape) == (3, 10, (3, 32, 32))
    with pytest.raises(UserError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert message.startswith(f"CIFAR10 not found in {tmp_path / 'cifar-10-batches-py'}")
    assert "data_batch_1, data_batch_2" in message and "batches.meta" in message


def test_data_root_from_environment_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path / "env"))
    assert MNIST().root == tmp_path / "env"
    with pytest.raises(UserError, match=f"not found in {tmp_path}/env/MNIST/raw"):
        MNIST(download=False).prepare_data()
    assert MNIST(root=str(tmp_path / "explicit")).root == tmp_path / "explicit"
    monkeypatch.delenv("GANLAB_DATA")
    monkeypatch.chdir(tmp_path)
    assert MNIST().root == tmp_path / "data"


@needs_mnist
def test_mnist_found_through_environment(monkeypatch):
    monkeypatch.setenv("GANLAB_DATA", str(MNIST_ROOT))
    _, y = MNIST(download=False, image_size=16).real_images("train", 3)
    assert y.tolist() == [5, 0, 4]
