"""Folders of image files, decoded per item by DataLoader workers: the one folder reader
(``FolderData``: the files found, checked and their decoding failures handled once) that
``ImageFolder`` (any folder of images, unlabelled), the pix2pix layout
(``ganlab.data.paired.PairedFolder``) and the CycleGAN layout
(``ganlab.data.unpaired.UnpairedFolder``) build on.

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

from ganlab.data.decode import SUFFIXES, find_images, load_image, unreadable
from ganlab.data.image_base import LoaderImageData
from ganlab.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

ON_ERROR = ("raise", "skip")


class Decoding:
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

    def summary(self) -> dict[str, Any]:
        """The run summary's count of files skipped (nothing when none was)."""
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


def layout_files(folder: Path, what: str, layout: str) -> list[Path]:
    """The image files under ``folder`` (recursively), sorted; ``UserError`` saying where to
    put them (``layout`` describes the expected folders)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        state = "has no image files" if folder.is_dir() else "does not exist"
        raise UserError(f"{folder} {state}: put the {what} there ({layout})")
    return files


def readable(files: list[Path], folder: Path, on_error: str) -> list[Path]:
    """``files`` without those PIL cannot open: ``UserError`` naming the first
    (``on_error="raise"``), or skipped with a warning (``"skip"``)."""
    bad = unreadable(files)
    if bad and on_error == "raise":
        raise UserError(
            f"cannot read image {bad[0]} ({len(bad)} unreadable file(s) in {folder}): fix or "
            "remove it, or set data.on_error=skip to skip unreadable files"
        )
    if bad:
        log.warning("skipped %d unreadable image file(s) in %s", len(bad), folder)
    skip = set(bad)
    files = [p for p in files if p not in skip]
    if not files:
        raise UserError(f"no readable image files in {folder}")
    return files


class FolderData(LoaderImageData):
    """Image files under ``path``, unlabelled, at ``channels`` x ``image_size`` x
    ``image_size``, decoded per item by ``num_workers`` DataLoader workers. Files PIL cannot
    open, or that fail to decode when a batch needs them, are an error naming the first
    (``on_error="raise"``) or skipped with a warning and counted (``on_error="skip"``, see
    ``Decoding``; the count is in the run summary)."""

    labelled = False

    def __init__(
        self,
        path: str,
        batch_size: int,
        seed: int,
        image_size: int,
        channels: int,
        on_error: str,
        num_workers: int,
    ) -> None:
        super().__init__(batch_size, seed, image_size, channels, 0, num_workers=num_workers)
        self.decoding = Decoding(on_error)
        self.path, self.on_error = Path(path).expanduser().absolute(), on_error
        self._files: dict[Path, list[Path]] = {}

    def read_folder(
        self,
        folder: Path,
        find: Callable[[Path], list[Path]],
        check: Callable[[list[Path]], list[Path]] | None = None,
    ) -> list[Path]:
        """The readable image files that ``find`` lists under ``folder`` (sorted; it raises
        the one line saying where to put them when there are none), passed through
        ``check`` when given; found and checked once."""
        if folder not in self._files:
            files = readable(find(folder), folder, self.on_error)
            self._files[folder] = check(files) if check else files
        return self._files[folder]

    def images(self, folder: Path, find: Callable[[Path], list[Path]]) -> FolderImages:
        """The images under ``folder`` as a dataset of uint8 (C, H, W), decoded per item."""
        paths = [str(p) for p in self.read_folder(folder, find)]
        return FolderImages(paths, self.channels, self.image_size, self.decoding)

    def summary(self, module: Any = None) -> dict[str, Any]:
        return self.decoding.summary()

    @property
    def cache_key(self) -> str:
        return f"{type(self).__name__}:{self.path}"


class ImageFolder(FolderData):
    """Every image under ``path`` (PNG, JPEG, BMP, GIF, WebP, TIFF, ...; any mode and size),
    unlabelled, at ``channels`` x ``image_size`` x ``image_size`` (see ``FolderData``).
    Only a "train" split."""

    def __init__(
        self,
        path: str,
        batch_size: int = 64,
        seed: int = 0,
        image_size: int = 64,
        channels: int = 3,
        on_error: str = "raise",
        num_workers: int = 2,
    ) -> None:
        super().__init__(path, batch_size, seed, image_size, channels, on_error, num_workers)

    def files(self) -> list[Path]:
        """The readable image files, found and checked once."""
        return self.read_folder(self.path, find_images)

    def setup(self, stage: str | None = None) -> None:
        self.files()

    def dataset(self, split: str) -> Dataset:
        if split != "train":
            raise ValueError(f"ImageFolder has only the 'train' split, got {split!r}")
        return self.images(self.path, find_images)
