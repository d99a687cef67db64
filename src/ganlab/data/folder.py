"""Any folder of images as an unlabelled data set, decoded per item by DataLoader workers.

Files are found recursively by suffix and sorted, so the data set (and with the seed, the
stream) is the same on every machine. Each image is converted to ``channels`` (RGBA and
transparent palettes composited on white), resized so its shorter side is ``image_size``
and centre-cropped, as in DCGAN's and StyleGAN's data preparation.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor
from torch.utils.data import Dataset

from ganlab.callbacks.summary import SummaryPart
from ganlab.data.decode import find_images, load_image, unreadable
from ganlab.data.image_base import LoaderImageData
from ganlab.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

ON_ERROR = ("raise", "skip")


class Decoding(SummaryPart):
    """How a data set of files treats one that fails to decode when a batch needs it (a
    truncated JPEG passes PIL's ``verify`` at setup and fails only here).

    ``on_error="raise"``: one line naming the file. ``"skip"``: the next file in order that
    decodes is served in its place (the same one on every run and after a resume, so the
    stream stays exact), a warning names the file once per process, and the files skipped
    are counted across the DataLoader workers (``skipped``; the run summary's ``data``).
    """

    def __init__(self, on_error: str = "raise") -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self._count = multiprocessing.Value("i", 0)
        self._warned: set[str] = set()

    @property
    def skipped(self) -> int:
        """Decodes that failed and were skipped, over all workers (a file once per worker)."""
        return int(self._count.value)

    def read(self, paths: list[str], i: int, decode: Callable[[str], T]) -> T:
        """``decode(paths[i])``, or under ``skip`` that of the next file that decodes."""
        for k in range(len(paths)):
            path = paths[(i + k) % len(paths)]
            try:
                return decode(path)
            except Exception as err:  # PIL raises many types for broken files
                if self.on_error == "raise":
                    raise UserError(
                        f"cannot decode image {path}: {err} (set data.on_error=skip to skip "
                        "files that fail to decode)"
                    ) from None
                self._skip(path, err)
        raise UserError(f"no image of {len(paths)} decodes (the first: {paths[0]})")

    def _skip(self, path: str, err: Exception) -> None:
        if path in self._warned:
            return
        self._warned.add(path)
        with self._count.get_lock():
            self._count.value += 1
        log.warning("data.on_error=skip: skipped %s, which fails to decode (%s)", path, err)

    def summary(self, module: Any = None) -> dict[str, Any]:
        if not self.skipped:
            return {}
        return {"data": {"skipped_images": self.skipped}}

    def __getstate__(self) -> dict[str, Any]:  # workers share the counter, not the warnings
        return {**self.__dict__, "_warned": set()}


class FolderImages(Dataset):
    """Image files decoded per item; a file that fails to decode is ``decoding``'s (one
    line naming it, or skipped)."""

    def __init__(
        self, paths: list[str], channels: int, size: int, decoding: Decoding | None = None
    ) -> None:
        self.paths, self.channels, self.size = paths, channels, size
        self.decoding = decoding or Decoding()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        return self.decoding.read(self.paths, i, self._load)

    def _load(self, path: str) -> Tensor:
        return load_image(path, self.channels, self.size)


class ImageFolder(SummaryPart, LoaderImageData):
    """Every image under ``path`` (PNG, JPEG, BMP, GIF, WebP, TIFF, ...; any mode and size),
    unlabelled, at ``channels`` x ``image_size`` x ``image_size``. Files PIL cannot open,
    or that fail to decode when a batch needs them, are an error naming the first
    (``on_error="raise"``) or skipped with a warning and counted (``on_error="skip"``, see
    ``Decoding``). Only a "train" split."""

    labelled = False

    def __init__(
        self,
        path: str,
        batch_size: int = 64,
        steps: int = 1000,
        batches_per_step: int = 1,
        seed: int = 0,
        image_size: int = 64,
        channels: int = 3,
        on_error: str = "raise",
        num_workers: int = 2,
    ) -> None:
        super().__init__(
            batch_size,
            steps,
            batches_per_step,
            seed,
            image_size,
            channels,
            0,
            num_workers=num_workers,
        )
        self.decoding = Decoding(on_error)
        self.path, self.on_error = Path(path).expanduser().absolute(), on_error
        self._files: list[Path] | None = None

    def summary(self, module: Any = None) -> dict[str, Any]:
        return self.decoding.summary()

    @property
    def cache_key(self) -> str:
        return f"{type(self).__name__}:{self.path}"

    def files(self) -> list[Path]:
        """The readable image files, found and checked once."""
        if self._files is None:
            files = find_images(self.path)
            bad = unreadable(files)
            if bad and self.on_error == "raise":
                raise UserError(
                    f"cannot read image {bad[0]} ({len(bad)} unreadable file(s) in {self.path}):"
                    " fix or remove it, or set data.on_error=skip to skip unreadable files"
                )
            if bad:
                log.warning("skipped %d unreadable image file(s) in %s", len(bad), self.path)
            skip = set(bad)
            self._files = [p for p in files if p not in skip]
            if not self._files:
                raise UserError(f"no readable image files in {self.path}")
        return self._files

    def setup(self, stage: str | None = None) -> None:
        self.files()

    def dataset(self, split: str) -> Dataset:
        if split != "train":
            raise ValueError(f"ImageFolder has only the 'train' split, got {split!r}")
        paths = [str(p) for p in self.files()]
        return FolderImages(paths, self.channels, self.image_size, self.decoding)
