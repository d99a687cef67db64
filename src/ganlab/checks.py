"""Checks made before training: configurations that cannot work, and checkpoints to resume.

Each failure is one line naming the conflicting choices and what would work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ganlab.errors import UserError
from ganlab.nets import has_batchnorm

log = logging.getLogger(__name__)


def check_compatible(
    module: Any, choices: dict[str, str], steps: int, interval: tuple[str, int]
) -> None:
    """Raise ``UserError`` for combinations that cannot work; warn for ones that waste a run.

    ``choices`` are Hydra's group choices (``loss``, ``model``, ...), used in the messages;
    ``interval`` is the name and value of the evaluation interval that applies to the data
    (``eval_every`` for points, ``sample_every`` for images).
    """
    penalties = [type(r).__name__ for r in module.regularizers if r.needs_input_gradient]
    if penalties and has_batchnorm(module.discriminator):
        # the penalty is per sample; BatchNorm couples the samples of a batch
        # (Gulrajani et al. 2017, sec. 4)
        raise UserError(
            f"loss={choices.get('loss')} with {', '.join(penalties)} needs a critic without "
            f"BatchNorm, but model={choices.get('model')} has BatchNorm in D: "
            "set model.discriminator.norm=layer (or none)"
        )
    name, every = interval
    if every > steps:
        log.warning(
            "%s=%d is larger than steps=%d: samples are evaluated only once, after the last step",
            name,
            every,
            steps,
        )


IMAGE_DATA = "digits, stacked_digits, mnist, fashion_mnist, stacked_mnist, cifar10, folder"
LABELLED_DATA = "digits, stacked_digits, mnist, fashion_mnist, stacked_mnist, cifar10"


def check_pairing(
    model_input: str,
    data_kind: str,
    conditional: bool,
    num_classes: int,
    model: str | None,
    data: str | None,
) -> None:
    """``UserError`` when the model cannot take the data: an image model on vector data
    (or the reverse), a class-conditional model on an unlabelled set."""
    if model_input != data_kind:
        what = {"image": "images", "vector": "vectors (points)"}
        fix = (
            f"data={IMAGE_DATA.replace(', ', '|')}"
            if model_input == "image"
            else "model=dcgan|resnet"
        )
        raise UserError(
            f"model={model} generates {what[model_input]} but data={data} holds "
            f"{what[data_kind]}: choose {fix}"
        )
    if conditional and not num_classes:
        raise UserError(
            f"model.conditional=true needs labelled data, but data={data} has no labels: "
            f"choose data={LABELLED_DATA.replace(', ', '|')} or model.conditional=false"
        )


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
