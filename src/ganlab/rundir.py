"""A run directory belongs to one run: a lock while it trains, no silent overwrite after.

- ``hold(run_dir)``: an exclusive lock (``flock`` on ``<run dir>/.ganlab.lock``) for as long
  as the run trains. A second run in the same directory at the same time would interleave
  its CSV rows with the first's and rename its checkpoints over them; it gets one line.
  The operating system releases the lock when the process ends, however it ends.
- ``refuse_overwrite``: a directory that already holds a run (its checkpoint, CSV log or
  summary) is only trained in again with ``resume``; otherwise one line says how to resume
  and how to start anew.

``ganlab.guard.RunDirGuard`` (a Hydra callback) does both, with the resume checks, before
Hydra writes its ``.hydra/`` files into the directory.

Only the process of rank 0 takes the lock and checks: the other ranks of a DDP run work in
the same directory on purpose.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ganlab.errors import UserError

LOCK_NAME = ".ganlab.lock"
#: the files that make a directory hold a run
RUN_FILES = ("checkpoints/last.ckpt", "metrics.csv", "summary.json")

_held: dict[Path, IO[str]] = {}  # run dirs this process holds, by resolved path


def launched_rank() -> int:
    """This process's global rank as its launcher says (0 for a plain run): the variables
    of torchrun, SLURM and Lightning's launcher, read before any process group exists."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def acquire(run_dir: Path) -> bool:
    """Lock ``run_dir`` for this process; False when this process held it already.
    ``UserError`` (one line) when another process holds it."""
    key = run_dir.resolve()
    if key in _held:
        return False
    key.mkdir(parents=True, exist_ok=True)
    handle = open(key / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise UserError(
            f"{run_dir} is in use by another ganlab run (pid {owner}): wait for it to finish, "
            "or give this run another hydra.run.dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held[key] = handle
    return True


def release(run_dir: Path) -> None:
    """Unlock ``run_dir`` (the lock file stays: removing it would race another run)."""
    handle = _held.pop(run_dir.resolve(), None)
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """The lock on ``run_dir`` while the block runs (nothing for ranks > 0; kept when this
    process held it before, e.g. from ``RunDirGuard``)."""
    mine = launched_rank() == 0 and acquire(run_dir)
    try:
        yield
    finally:
        if mine:
            release(run_dir)


def run_files(run_dir: Path) -> list[str]:
    """The files in ``run_dir`` that show a run was trained there."""
    return [name for name in RUN_FILES if (run_dir / name).is_file()]


def refuse_overwrite(run_dir: Path, resume_command: str) -> None:
    """``UserError`` when ``run_dir`` holds a run: say how to resume it or start anew."""
    found = run_files(run_dir)
    if found:
        raise UserError(
            f"{run_dir} already holds a run ({', '.join(found)}): continue it with "
            f"`{resume_command}`, or start anew in another hydra.run.dir (or delete it)"
        )
