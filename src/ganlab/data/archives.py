"""Where the torchvision data sets live, and the one-line error when their files are missing.

The root is ``data.root``, else the environment variable ``GANLAB_DATA``, else ``data`` in
the current directory; each set keeps torchvision's layout under it (``MNIST/raw``,
``FashionMNIST/raw``, ``cifar-10-batches-py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganlab.data.sources import resize
from ganlab.errors import UserError

ENV_VAR = "GANLAB_DATA"


def data_root(root: str | None) -> Path:
    """``root``, else $GANLAB_DATA, else ./data, as an absolute path."""
    chosen = root or os.environ.get(ENV_VAR) or "data"
    return Path(chosen).expanduser().absolute()


@dataclass(frozen=True)
class Archive:
    """The files a torchvision data set reads, relative to the data root."""

    name: str  # as torchvision names the class
    folder: str
    files: tuple[str, ...]

    def missing(self, root: Path) -> list[str]:
        return [f for f in self.files if not (root / self.folder / f).is_file()]

    def ensure(self, root: Path, download: bool, fetch: Callable[[], object] | None = None) -> None:
        """Return if the files are there; else download them (``fetch``, when ``download``)
        or raise ``UserError`` saying which files to put where."""
        if not self.missing(root):
            return
        if download and fetch is not None:
            try:
                fetch()
            except Exception:  # no network, a mirror down, a checksum mismatch
                pass
        if missing := self.missing(root):
            why = " and could not be downloaded (no network?)" if download else " (download=false)"
            raise UserError(
                f"{self.name} not found in {root / self.folder}{why}: put "
                f"{', '.join(missing)} there, or point data.root / {ENV_VAR} at a folder that "
                f"has {self.folder}"
            )


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
ARCHIVES = {
    "MNIST": Archive("MNIST", "MNIST/raw", MNIST_FILES),
    "FashionMNIST": Archive("FashionMNIST", "FashionMNIST/raw", MNIST_FILES),
    "CIFAR10": Archive(
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
    ),
}


def ensure_files(name: str, root: Path, download: bool) -> None:
    """Check that torchvision's ``name`` data set is under ``root``, downloading it when
    ``download``; ``UserError`` naming the missing files and the folder otherwise."""
    import torchvision.datasets  # slow to import: only for the sets that need it

    cls = getattr(torchvision.datasets, name)
    ARCHIVES[name].ensure(root, download, lambda: cls(str(root), train=True, download=True))


def torchvision_set(name: str, root: Path, split: str) -> Any:
    """torchvision's ``name`` data set of ``split``; ``UserError`` if its files are missing
    or unreadable."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, name)
    archive = ARCHIVES[name]
    archive.ensure(root, download=False)
    try:
        return cls(str(root), train=split == "train", download=False)
    except Exception as err:  # corrupt or truncated files fail in many ways (an assert, ...)
        reason = str(err).splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{name} in {root / archive.folder} is unreadable ({reason}): the files are truncated "
            "or corrupt; put intact copies there (or delete them to download again)"
        ) from None


class ArrayImages(Dataset):
    """Images (N, H, W, C) uint8 in memory with labels, served per item as (uint8 (C, size,
    size), label) to DataLoader workers."""

    def __init__(self, images: np.ndarray, labels: list[int], size: int) -> None:
        self.images, self.labels, self.size = images, labels, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        image = torch.from_numpy(self.images[i]).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
        return resize(image[None], self.size)[0], int(self.labels[i])
