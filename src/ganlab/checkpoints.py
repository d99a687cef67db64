"""Rebuild a trained generator from a ganlab checkpoint, for the sample/evaluate commands.

A checkpoint carries its run's config and what the networks learned from the data (image
size, channels, classes), so no data set and no Hydra run is needed to use it. It is read
with ``torch.load(weights_only=True)``: plain tensors and containers, never code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from ganlab.checks import read_checkpoint
from ganlab.errors import UserError
from ganlab.module import call_net, draw_latent, eval_seed


@dataclass
class TrainedGenerator:
    """A generator restored from a checkpoint, with what is needed to sample it like the run
    did (latent size and distribution, classes, the run's evaluation seed)."""

    net: nn.Module
    config: DictConfig
    latent_dim: int
    latent_dist: str
    num_classes: int
    seed: int
    step: int
    ema: bool

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def z(self, n: int, seed: int | None = None) -> Tensor:
        """The run's evaluation z (the grids' z) by default, or the stream of ``seed``."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(eval_seed(self.seed) if seed is None else seed)
        return draw_latent(n, self.latent_dim, self.latent_dist, gen)

    @torch.no_grad()
    def __call__(self, z: Tensor, y: Tensor | None = None, batch_size: int = 1000) -> Tensor:
        if self.num_classes and y is None:
            y = torch.arange(len(z), device=z.device) % self.num_classes
        ys = [None] * len(z.split(batch_size)) if y is None else y.split(batch_size)
        parts = [call_net(self.net, zc, yc) for zc, yc in zip(z.split(batch_size), ys, strict=True)]
        return torch.cat(parts)


def load_generator(path: str | Path, ema: bool = True, device: str = "cpu") -> TrainedGenerator:
    """The generator of a ganlab checkpoint (its EMA copy when there is one and ``ema``), in
    eval mode. ``UserError`` (one line) for a missing, foreign or incomplete file."""
    ckpt = read_checkpoint(Path(path))
    state = ckpt["ganlab"]
    if "config" not in state:
        raise UserError(f"{path} was written by a ganlab without the run config in checkpoints")
    config = OmegaConf.create(state["config"])
    weights = _generator_weights(ckpt["state_dict"], ema)
    net = hydra.utils.instantiate(config.model.generator, **state.get("net_kwargs", {}))
    net.load_state_dict(weights["state"])
    net.eval().requires_grad_(False).to(device)
    return TrainedGenerator(
        net=net,
        config=config,
        latent_dim=int(config.latent.dim),
        latent_dist=str(config.latent.dist),
        num_classes=int(state.get("net_kwargs", {}).get("num_classes", 0)),
        seed=int(config.seed),
        step=int(state["g_step"]),
        ema=weights["ema"],
    )


def _generator_weights(state_dict: dict[str, Any], ema: bool) -> dict[str, Any]:
    prefixes = ("generator_ema.", "generator.") if ema else ("generator.",)
    for prefix in prefixes:
        state = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if state:
            return {"state": state, "ema": prefix == "generator_ema."}
    raise UserError("the checkpoint holds no generator weights")
