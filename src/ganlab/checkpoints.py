"""Rebuild a trained family from a ganlab checkpoint, for the sample/evaluate commands.

A checkpoint carries its run's config and what the data said (``DataSpec``: shapes,
classes), so no data set and no Hydra run is needed to use it. It is read with
``torch.load(weights_only=True)``: plain tensors and containers, never code; and its config
may name only the callables that ``ganlab.trust`` registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.assemble import make_family
from ganlab.checks import read_checkpoint
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError, one_line
from ganlab.families.base import Family
from ganlab.trust import trusted_config

PREFIX = "family."  # GANModule holds the family under this name


@dataclass
class Trained:
    """A family restored from a checkpoint (in eval mode, frozen), with the run's config,
    what its data provided, its step, and whether samples come from EMA averages."""

    family: Family
    config: DictConfig
    spec: DataSpec
    step: int
    ema: bool

    @property
    def device(self) -> torch.device:
        return next(self.family.parameters()).device


def load_trained(path: str | Path, ema: bool = True, device: str = "cpu") -> Trained:
    """The family of a ganlab checkpoint; it samples with its EMA averages when there are
    some and ``ema``. ``UserError`` (one line) for a missing, foreign or incomplete file."""
    ckpt = read_checkpoint(Path(path))
    state = ckpt["ganlab"]
    if "config" not in state or "spec" not in state:
        raise UserError(
            f"{path} was written by an older ganlab (no run config and data spec in it): "
            "retrain it with this version"
        )
    # the config stored resolved (an older checkpoint's unresolved one: references followed)
    config = OmegaConf.create(trusted_config(state.get("resolved", state["config"]), str(path)))
    spec = DataSpec.from_dict(state["spec"])
    try:
        family = make_family(config, spec)
    except Exception as err:  # a config this version cannot build (edited, older, ...)
        reason = one_line(err)
        raise UserError(f"{path}: cannot rebuild its nets from its config ({reason})") from None
    weights = {k[len(PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    has_ema = any(k.startswith("ema.") for k in weights)
    if has_ema:
        family.enable_ema()
    try:
        family.load_state_dict(weights)
    except RuntimeError as err:  # keys or shapes that do not fit the config's nets
        first = str(err).splitlines()[0][:160]
        raise UserError(f"{path}: its weights do not fit its own config ({first})") from None
    if not ema:
        family.ema = None
    family.eval().requires_grad_(False).to(device)
    return Trained(family, config, spec, int(state["g_step"]), ema=has_ema and ema)


#: keys that older ganlab stored in a data config: the run's length, now the runner's
RUN_LENGTH = ("steps", "batches_per_step")


def rebuild_data(config: DictConfig) -> Any:
    """The data module of a checkpoint's run (``config``: ``Trained.config``), for its real
    images (no training batches are drawn). It reads where the checkpoint says and never
    downloads or creates anything there: ``download`` is switched off, so a path a
    checkpoint names is never made. A run's length is no data option: the ``steps`` and
    ``batches_per_step`` that older checkpoints stored in their data config are dropped."""
    import hydra

    node = OmegaConf.to_container(config.data)
    for key in RUN_LENGTH:
        node.pop(key, None)
    fetch = {"download": False} if "download" in node else {}
    return hydra.utils.instantiate(node, **fetch)
