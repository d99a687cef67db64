"""Build a run's family from its config: shared by training and the checkpoint commands."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import hydra
from omegaconf import DictConfig

from ganlab.data.spec import DataSpec
from ganlab.families.base import Family

log = logging.getLogger("ganlab")


def build_node(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``, saying what it builds."""
    log.info("Instantiating %s <%s>", what, node.get("_target_"))
    return hydra.utils.instantiate(node, **kwargs)


def make_family(
    cfg: DictConfig, spec: DataSpec, choices: Mapping[str, str] | None = None
) -> Family:
    """The run's family with its nets built for ``spec``: ``family`` gets the model's
    generator and discriminator as factories (the family calls them with what the data
    says), the loss and the regularizers. ``choices`` (Hydra's) name things in messages."""
    family = build_node(
        cfg.family,
        "family",
        generator=build_node(cfg.model.generator, "generator", _partial_=True),
        discriminator=build_node(cfg.model.discriminator, "discriminator", _partial_=True),
        loss=build_node(cfg.loss, "loss"),
        regularizers=[build_node(r, "regularizer") for r in cfg.regularizers.values() if r],
    )
    family.setup(spec, choices or {})
    return family
