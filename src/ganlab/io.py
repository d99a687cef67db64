"""One way to write a file so that readers never see half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, commit: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; when the block succeeds it is flushed to
    disk and renamed over ``path`` (atomic on POSIX), else removed: an interruption or a full
    disk leaves the old file intact and no temporary file behind. ``commit=False`` (the ranks
    of a collective save that do not write) only cleans up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if commit and tmp.stat().st_size:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
