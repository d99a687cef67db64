"""Checks of checkpoints before they are used: readable, ganlab's, and which one to resume.

Each failure is one line. (What cannot train together is checked by the families, which
know what they need: ``ganlab.families``.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import UserError

log = logging.getLogger(__name__)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a ganlab checkpoint safely (``weights_only``); ``UserError`` if it is not one."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes), not a checkpoint: name a run's last.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign pickle, not a torch file at all
        reason = (str(err).strip() or type(err).__name__).splitlines()[0][:120]  # EOFError: ""
        raise UserError(
            f"{path} is not a readable checkpoint (truncated or foreign?): {reason}"
        ) from None
    state = ckpt.get("ganlab") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "g_step" not in state or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a ganlab checkpoint (no 'ganlab' state in it)")
    return ckpt


def check_fits(expected: dict[str, Tensor], saved: dict[str, Tensor], path: Path) -> None:
    """``UserError`` (one line) when the weights ``saved`` in checkpoint ``path`` do not fit
    the module whose state is ``expected``: missing or extra tensors, other shapes."""
    missing = sorted(expected.keys() - saved.keys())
    extra = sorted(saved.keys() - expected.keys())
    shapes = sorted(k for k in expected.keys() & saved.keys()
                    if tuple(expected[k].shape) != tuple(saved[k].shape))  # fmt: skip
    problem = (
        f"{shapes[0]} is {tuple(saved[shapes[0]].shape)} there, {tuple(expected[shapes[0]].shape)}"
        " here" if shapes else f"it lacks {missing[0]}" if missing else
        f"it has {extra[0]}, which this run's nets lack" if extra else None
    )  # fmt: skip
    if problem:
        count = len(missing) + len(extra) + len(shapes)
        raise UserError(
            f"{path} does not fit this run's nets: {problem} ({count} tensor(s) differ); "
            "resume a checkpoint of this run, or start anew in another hydra.run.dir"
        )


def checkpoint_path(resume: str, run_dir: Path) -> Path | None:
    """The checkpoint ``resume`` (auto, a run directory or a file) names; None for
    ``auto`` when ``run_dir`` has none yet."""
    if resume == "auto":
        path = run_dir / "checkpoints" / "last.ckpt"
        return path if path.is_file() else None
    path = Path(resume).expanduser()
    return path / "checkpoints" / "last.ckpt" if path.is_dir() else path


def resolve_resume(resume: str | None, run_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """The checkpoint to resume from and its contents, for ``resume`` = null/auto/path."""
    if resume in (None, "", "null", "never"):
        return None, {}
    path = checkpoint_path(str(resume), run_dir)
    if path is None:
        log.info("resume=auto: no checkpoint in %s, starting fresh", run_dir / "checkpoints")
        return None, {}
    ckpt = read_checkpoint(path)
    log.info("resuming from %s (step %d)", path, ckpt["ganlab"]["g_step"])
    return path, ckpt
