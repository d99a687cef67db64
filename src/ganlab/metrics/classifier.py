"""A small digit classifier trained on the real data: labels generated samples for mode counts
(VEEGAN, Srivastava et al. 2017, sec. 5.2; PacGAN, Lin et al. 2018, sec. 5.2) and gives a
domain feature space for FID/KID/precision-recall on digits, where Inception features are a
poor fit. Trained once per (data set, image size) and cached on disk.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.data.image_base import InMemoryImageData
from ganlab.errors import UserError
from ganlab.io import atomic_path

log = logging.getLogger(__name__)

VERSION = 1  # bump when the architecture or the training recipe changes: old files are ignored
SIZES = (16, 32, 64)
FEATURES = 128
# per base data set: training epochs and the default minimum held-out accuracy
RECIPES = {"digits": (8, 0.97), "mnist": (2, 0.99)}


def _block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DomainClassifier(nn.Module):
    """Four 3x3 convs (32, 32, 64, 64; BN, ReLU, two 2x2 max-pools) after a stride-2 5x5 stem,
    then a 128-d penultimate layer and the logits.

    Every image size is brought to 16x16 by the stem (64 px is average-pooled by 2 first,
    16 px gets a stride-1 stem), which keeps CPU training at the 16 px cost. The last pool
    keeps a 4x4 map rather than a global average: where the strokes are tells digits apart.
    """

    def __init__(self, image_size: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        if image_size not in SIZES:
            raise ValueError(f"image_size must be one of {SIZES}, got {image_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.image_size, self.num_classes = image_size, num_classes
        pre = nn.AvgPool2d(image_size // 32) if image_size > 32 else nn.Identity()
        self.body = nn.Sequential(
            pre,
            *_block(1, 32, 5, stride=2 if image_size >= 32 else 1),  # (B, 32, 16, 16)
            *_block(32, 32, 3),
            nn.MaxPool2d(2),  # (B, 32, 8, 8)
            *_block(32, 64, 3),
            *_block(64, 64, 3),
            nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.Flatten(),  # (B, 1024)
            nn.Linear(64 * 16, FEATURES),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Images (B, 1, S, S) in [-1, 1] -> penultimate activations (B, 128), float32."""
        expected = (1, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"DomainClassifier: expected images (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        return self.body(x.float()).float()

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, 1, S, S) in [-1, 1] -> logits (B, num_classes)."""
        return self.head(self.features(x))

    def outputs(self, x: Tensor) -> dict[str, Tensor]:
        """Features (B, 128), logits (B, K) and labels (B,) from one pass of the trunk (the
        metrics need all three; ``features`` then ``forward`` would run it twice)."""
        features = self.features(x)
        logits = self.head(features)
        return {"features": features, "logits": logits, "labels": logits.argmax(1)}


@torch.no_grad()
def predict(classifier: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Labels (N,) on ``x``'s device, in eval mode (BatchNorm running statistics) and in
    chunks on the classifier's device; the classifier's train/eval mode is restored."""
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        out = [classifier(c.to(device)).argmax(1).to(x.device) for c in x.split(batch_size)]
    finally:
        classifier.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=x.device)


def classify_channels(classifier: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Stacked images (B, 3, H, W) -> the digit of each channel (B, 3), classified apart."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"classify_channels: expected images (B, 3, H, W), got {tuple(x.shape)}")
    b, _, h, w = x.shape
    digits = predict(classifier, x.reshape(b * 3, 1, h, w), batch_size)  # (B·3,) R, G, B
    return digits.view(b, 3)


def stacked_labels(classifier: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Stacked images (B, 3, H, W) -> mode labels (B,) = 100·d0 + 10·d1 + d2 (1,000 modes)."""
    d = classify_channels(classifier, x, batch_size)
    return d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]


def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Fraction of ``images`` whose predicted label is ``labels``."""
    return (predict(classifier, images) == labels.to(images.device)).double().mean().item()


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image of (B, C, H, W) shifted by its own integer (dy, dx) in
    [-max_shift, max_shift]; borders are replicated."""
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")  # (B, C, H + 2m, W + 2m)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols]  # (B, C, H, W)


def _check_data(images: Tensor, labels: Tensor, what: str) -> None:
    if images.dim() != 4 or images.shape[1] != 1 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"train_classifier: {what} must be images (N, 1, S, S) and labels (N,), "
            f"got {tuple(images.shape)} and {tuple(labels.shape)}"
        )


def train_classifier(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = True,
    num_classes: int = 10,
) -> tuple[DomainClassifier, float]:
    """Adam with a one-cycle schedule (Smith & Topin 2019) and ±2 px random shifts, on the
    images' device; deterministic given ``seed`` (same device and thread count). Returns the
    classifier in eval mode with frozen weights, and its accuracy on the test images."""
    _check_data(images, labels, "training data")
    _check_data(test_images, test_labels, "test data")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    labels = labels.to(images.device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialization, global RNG untouched
        torch.manual_seed(seed)
        model = DomainClassifier(images.shape[-1], num_classes).to(images.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=generator).split(batch_size):
            idx = idx.to(images.device)
            x = random_shift(images[idx], 2, generator) if augment else images[idx]
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    model.eval().requires_grad_(False)
    return model, accuracy(model, test_images, test_labels)


def cache_path(name: str, image_size: int, cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir>/classifier_<name>_<image_size>px_v<VERSION>.pt``; ``cache_dir`` defaults
    to ``$GANLAB_CACHE``, else ``~/.cache/ganlab``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"classifier name must be letters, digits, '_', '.' or '-', got {name!r}")
    root = Path(cache_dir or os.environ.get("GANLAB_CACHE") or "~/.cache/ganlab").expanduser()
    return root / f"classifier_{name}_{image_size}px_v{VERSION}.pt"


def base_data(datamodule: Any) -> tuple[str, InMemoryImageData]:
    """The single-channel set a classifier for ``datamodule`` learns, as the data module
    states it: (its ``classifier`` name, ``classifier_base()``). Stacked sets name their
    base digits."""
    return datamodule.classifier, datamodule.classifier_base()


def _load(path: Path, name: str, image_size: int) -> tuple[DomainClassifier, dict] | None:
    """The cached classifier and its metadata; None (with a warning) for a file that is
    unreadable or was written for another name, size or VERSION."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = dict(blob["meta"])
        expected = {"name": name, "image_size": image_size, "version": VERSION}
        found = {key: meta.get(key) for key in expected}
        if found != expected:
            raise ValueError(f"written for {found}, expected {expected}")
        model = DomainClassifier(image_size, meta["num_classes"])
        model.load_state_dict(blob["state_dict"])
    except Exception as err:  # any unreadable or foreign file is replaced, never trusted
        reason = (str(err).splitlines() or [type(err).__name__])[0][:200]
        log.warning(
            "classifier cache %s is unusable (%s): retraining and overwriting", path, reason
        )
        return None
    return model.eval().requires_grad_(False), meta


def _save(path: Path, model: DomainClassifier, meta: dict) -> None:
    """Write atomically (``ganlab.io.atomic_path``)."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    try:
        with atomic_path(path) as tmp:
            torch.save({"state_dict": state, "meta": meta}, tmp)
    except OSError as err:  # an unwritable cache costs a retrain next time, not this run
        log.warning("cannot cache the classifier at %s: %s", path, err)


def _train(
    name: str, kind: str, base: InMemoryImageData, device: torch.device, seed: int
) -> tuple[DomainClassifier, dict]:
    base.prepare_data()
    x, y = base.real_images("train")
    xt, yt = base.real_images("test")
    assert y is not None and yt is not None
    epochs = RECIPES[kind][0]
    log.info("Training the %s classifier: %d images, %d epochs", name, len(x), epochs)
    start = time.perf_counter()
    model, acc = train_classifier(
        x.to(device), y.to(device), xt.to(device), yt.to(device), epochs=epochs, seed=seed
    )
    meta = {
        "name": name,
        "data": kind,
        "image_size": base.image_size,
        "version": VERSION,
        "num_classes": model.num_classes,
        "accuracy": acc,
        "n_train": len(x),
        "n_test": len(xt),
        "epochs": epochs,
        "seed": seed,
        "seconds": time.perf_counter() - start,
    }
    return model, meta


def load_or_train(
    name: str,
    datamodule: Any,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    *,
    min_accuracy: float | None = None,
    seed: int = 0,
) -> tuple[DomainClassifier, dict]:
    """The classifier of ``datamodule``'s base digits (see ``base_data``), loaded from
    ``cache_path(name, ...)`` or trained there on the training split with ``seed`` and
    cached. Returns it on ``device`` in eval mode with frozen weights, and its metadata
    (``accuracy`` on the held-out split, ..., ``cached``, ``path``). Raises ``UserError``
    when the accuracy is below ``min_accuracy`` (default 0.97 for digits, 0.99 for MNIST).

    The metrics use seed 0 under the data's own name; a classifier trained for another use
    (CycleGAN's semantic loss) takes another seed and a name of its own, so the two never
    share a cache file."""
    kind, base = base_data(datamodule)
    if base.image_size not in SIZES:
        raise UserError(f"no domain classifier for image_size={base.image_size}: use {SIZES}")
    path = cache_path(name, base.image_size, cache_dir)
    loaded = _load(path, name, base.image_size)
    if loaded is None:
        model, meta = _train(name, kind, base, torch.device(device), seed)
        _save(path, model, meta)
    else:
        model, meta = loaded
    meta = {**meta, "cached": loaded is not None, "path": str(path)}
    threshold = RECIPES[kind][1] if min_accuracy is None else min_accuracy
    if meta["accuracy"] < threshold:
        raise UserError(
            f"the {name} classifier reaches held-out accuracy {meta['accuracy']:.4f}, below "
            f"min_accuracy={threshold} ({path}): lower min_accuracy or fix the data"
        )
    return model.to(device), meta
