"""Checks of checkpoints before they are used: readable, ganlab's, and which one to resume.

Each failure is one line. (What cannot train together is checked by the families, which
know what they need: ``ganlab.families``.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import UserError

log = logging.getLogger(__name__)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a ganlab checkpoint safely (``weights_only``); ``UserError`` if it is not one."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, foreign pickle, not a torch file at all
        reason = str(err).splitlines()[0][:120]
        raise UserError(
            f"{path} is not a readable checkpoint (truncated or foreign?): {reason}"
        ) from None
    if not isinstance(ckpt, dict) or "ganlab" not in ckpt:
        raise UserError(f"{path} is not a ganlab checkpoint (no 'ganlab' state in it)")
    return ckpt


def resolve_resume(resume: str | None, run_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """The checkpoint to resume from and its ganlab state, for ``resume`` = null/auto/path."""
    if resume in (None, "", "null", "never"):
        return None, {}
    if resume == "auto":
        path = run_dir / "checkpoints" / "last.ckpt"
        if not path.is_file():
            log.info("resume=auto: no checkpoint in %s, starting fresh", path.parent)
            return None, {}
    else:
        path = Path(resume)
        path = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    state = read_checkpoint(path)["ganlab"]
    log.info("resuming from %s (step %d)", path, state["g_step"])
    return path, state
