"""Paired image translation data (Pix2Pix, Isola et al. 2017): items (input, target, label).

- ``PairedImages``: a task (``ganlab.data.paired_tasks``: edges, super-resolution,
  inpainting, colorization) applied once to every image of a base image set (digits, MNIST,
  stacked digits, CIFAR-10, a folder, ...); the target is the image, the label is the base
  set's (for evaluation only: label preservation). Held on the training device.
- ``PairedFolder``: the pix2pix layout, each file A|B side by side, in ``train/``, ``val/``
  and ``test/``; decoded per item by DataLoader workers.

Each training step yields {"input": (R, B, C_in, S, S), "target": (R, B, C_out, S, S)} in
[-1, 1], plus "label": (R, B) int64 when the base set is labelled; R = per_step (the
family's batches per step, ``DataModule.serve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ganlab.data.decode import to_channels
from ganlab.data.folder import Decoding, FolderData, layout_files
from ganlab.data.image_base import ImageDataModule, InMemoryImageData
from ganlab.data.paired_tasks import PairTask
from ganlab.data.sampling import DictCollate, Item, concat, to_batch, to_float
from ganlab.data.sources import check_split, first
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")
LAYOUT = (
    "the pix2pix layout: train/, val/ and test/, each file A|B side by side, e.g. facades from "
    "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
)
CHUNK = 4096  # images per task call when building the pairs (bounds the float copies)


@dataclass
class PairSource:
    """A split as uint8 inputs (N, C_in, H, W) and targets (N, C, H, W), int64 labels (N,)
    or None."""

    inputs: Tensor
    targets: Tensor
    labels: Tensor | None

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, idx: Tensor) -> Item:
        item = {
            "input": self.inputs.index_select(0, idx),
            "target": self.targets.index_select(0, idx),
        }
        if self.labels is not None:
            item["label"] = self.labels.index_select(0, idx)
        return item

    def batch(self, idx: Tensor, per_step: int | None = None) -> Item:
        """The pairs at ``idx`` as a batch (images in [-1, 1])."""
        return to_batch(self.take(idx), per_step)

    def to(self, device: torch.device) -> PairSource:
        labels = None if self.labels is None else self.labels.to(device)
        return PairSource(self.inputs.to(device), self.targets.to(device), labels)


class PairedImages(InMemoryImageData):
    """A paired task derived from an image set: target = a base image, input = ``task`` of
    it, label = its class (evaluation only). The pairs of a split are computed once on the
    CPU when first used and held on the training device.

    Args:
        base: the image set (any ``ImageDataModule``; only its splits are used, not its batch
            options); its ``image_size`` and channels are the targets'.
        task: ``Edges``, ``SuperResolution``, ``Inpainting``, ``Colorization``, ...
        batch_size, seed: as for every image data module.
    """

    kind = "pairs"
    labelled = True  # labels for evaluation only

    def __init__(
        self,
        base: ImageDataModule,
        task: PairTask,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed, base.image_size, base.channels, base.num_classes)
        task.check(type(base).__name__, base.channels, base.image_size)
        self.base, self.task = base, task
        self.in_channels = task.in_channels(base.channels)

    @property
    def spec(self) -> DataSpec:
        size = (self.image_size, self.image_size)
        return DataSpec(
            self.kind,
            {"input": (self.in_channels, *size), "target": (self.channels, *size)},
            num_classes=self.num_classes,
            classifier=self.base.spec.classifier,
            modes=self.modes,
        )

    def prepare_data(self) -> None:
        self.base.prepare_data()

    def load(self, split: str) -> PairSource:
        data = self.base.tensor_source(split)
        targets, labels = data.take(torch.arange(len(data)))
        inputs = torch.cat([self.task(chunk) for chunk in targets.split(CHUNK)])
        return PairSource(inputs, targets, labels)

    def domain_data(self, part: str = "target") -> ImageDataModule:
        """The image set the outputs are judged against (real images, domain classifier):
        the base set."""
        return self.base

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` targets of ``split`` in [-1, 1] on the CPU, with labels or None
        (the real images FID compares outputs with)."""
        data = self.source(split)
        idx = first(len(data), n, split)
        labels = None if data.labels is None else data.labels.index_select(0, idx)
        return to_float(data.targets.index_select(0, idx)), labels


def to_chw(array: np.ndarray) -> Tensor:
    """A PIL image's array (H, W) or (H, W, C) as a uint8 tensor (C, H, W)."""
    x = torch.from_numpy(array)
    return x[None] if x.dim() == 2 else x.permute(2, 0, 1)  # (H, W, C) -> (C, H, W)


def split_ab(path: str, channels: int, size: int, direction: str) -> Item:
    """The pix2pix file at ``path`` (A left, B right) as {"input", "target"} uint8
    (channels, size, size), each half resized (bicubic, as pix2pix's loader), not cropped."""
    with Image.open(path) as image:
        image = to_channels(image, channels)
        w, h = image.size
        halves = [image.crop((0, 0, w // 2, h)), image.crop((w // 2, 0, 2 * (w // 2), h))]
        a, b = (
            to_chw(np.array(half.resize((size, size), Image.Resampling.BICUBIC))) for half in halves
        )
    return {"input": a, "target": b} if direction == "AtoB" else {"input": b, "target": a}


class ABImages(Dataset):
    """pix2pix A|B files decoded per item; a file that fails to decode is ``decoding``'s
    (one line naming it, or skipped: ``ganlab.data.folder.Decoding``)."""

    def __init__(
        self,
        paths: list[str],
        channels: int,
        size: int,
        direction: str,
        decoding: Decoding | None = None,
    ) -> None:
        self.paths, self.channels, self.size, self.direction = paths, channels, size, direction
        self.decoding = decoding or Decoding()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        return self.decoding.read(self.paths, i, self._load)

    def _load(self, path: str) -> Item:
        return split_ab(path, self.channels, self.size, self.direction)


class PairedFolder(FolderData):
    """The pix2pix layout: ``path``/train, ``path``/val (and ``path``/test), each file A|B side
    by side; both halves resized to ``image_size`` (no crop; the paper's random jitter is not
    applied). Unlabelled; decoded per item by ``num_workers`` DataLoader workers.

    Args:
        path: the folder holding ``train/`` and the held-out folder.
        direction: ``AtoB`` (input = left half) or ``BtoA`` (facades: photo|labels, so labels
            -> photo is BtoA).
        held_out: the folder served as the "test" split: ``val`` (facades, maps, edges2shoes
            all have it) or ``test``.
        channels: 1 or 3, for both halves.
        on_error: files PIL cannot open stop the run naming the first (``raise``) or are
            skipped with a warning (``skip``), as for ``ImageFolder``.
    """

    kind = "pairs"

    def __init__(
        self,
        path: str,
        direction: str = "AtoB",
        batch_size: int = 1,
        seed: int = 0,
        image_size: int = 256,
        channels: int = 3,
        held_out: str = "val",
        on_error: str = "raise",
        num_workers: int = 2,
    ) -> None:
        super().__init__(path, batch_size, seed, image_size, channels, on_error, num_workers)
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if held_out not in ("val", "test"):
            raise ValueError(f"held_out must be val or test, got {held_out!r}")
        self.direction, self.held_out, self.in_channels = direction, held_out, channels

    @property
    def spec(self) -> DataSpec:
        shape = (self.channels, self.image_size, self.image_size)
        return DataSpec(self.kind, {"input": shape, "target": shape})

    def files(self, split: str) -> list[Path]:
        """The A|B files of ``split`` ("train", or "test": the ``held_out`` folder)."""
        check_split(split)
        folder = "train" if split == "train" else self.held_out
        find = partial(layout_files, what=f"{folder} A|B images", layout=LAYOUT)
        return self.read_folder(self.path / folder, find, check_pairs)

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "test"):  # both: evaluation uses the held-out folder
            self.files(split)

    def dataset(self, split: str) -> Dataset:
        paths = [str(p) for p in self.files(split)]
        return ABImages(paths, self.channels, self.image_size, self.direction, self.decoding)

    def collate(self, per_step: int | None = None) -> DictCollate:
        return DictCollate(per_step)

    @property
    def cache_key(self) -> str:
        return f"{type(self).__name__}:{self.path}:{self.direction}"

    def domain_data(self, part: str = "target") -> PairedFolder:
        """The image set the outputs are judged against: these targets (no classifier)."""
        return self

    def val_items(self, n: int | None = None, split: str = "test") -> Item:
        """The first ``n`` pairs of ``split`` (held out: "test"; all when it has fewer),
        decoded by the workers, as a batch without the step dim, on the CPU: a fixed
        validation set."""
        check_split(split)
        n = None if n is None else min(n, len(self.files(split)))
        return concat(self.load_head(split, n))

    def real_images(
        self, split: str = "train", n: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` targets of ``split`` in [-1, 1] on the CPU (no labels)."""
        return self.val_items(n, split)["target"], None


__all__ = ["DIRECTIONS", "PairSource", "PairedFolder", "PairedImages", "split_ab"]


def check_pairs(files: list[Path]) -> list[Path]:
    """``files``, when each holds an A|B pair side by side (twice as wide as high, within a
    pixel); ``UserError`` naming the first that does not: plain images would be split into
    halves and trained on silently. Only the headers are read."""
    odd = []
    for path in files:
        with Image.open(path) as image:
            width, height = image.size
        if abs(width - 2 * height) > 1:
            odd.append((path, width, height))
    if odd:
        path, width, height = odd[0]
        raise UserError(
            f"{path} is {width}x{height}, not an A|B pair ({len(odd)} of {len(files)} file(s) "
            f"in {path.parent}): data=paired_folder takes files holding A and B side by side, "
            "twice as wide as high (e.g. 512x256); for two folders of single images use "
            "data=unpaired_folder"
        )
    return files
