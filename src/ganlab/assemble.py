"""Build a run's family from its config: shared by training and the checkpoint commands."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import hydra
from omegaconf import DictConfig

import ganlab.resolvers  # noqa: F401 - ${ganlab.mul:...} in the configs it builds
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
    """The run's family with its nets built for ``spec`` (``Family.setup``); ``choices``
    (Hydra's) name things in messages."""
    family = declare_family(cfg)
    family.setup(spec, choices or {})
    return family


def declare_family(cfg: DictConfig) -> Family:
    """The run's family before its nets are built (its phases, hence the batches per step it
    needs, are known): ``family`` gets the model's generator and discriminator as factories
    (the family calls them with what the data says), the loss and the regularizers."""
    return build_node(
        cfg.family,
        "family",
        generator=net_factory(cfg.model.generator, "generator"),
        discriminator=net_factory(cfg.model.discriminator, "discriminator"),
        loss=build_node(cfg.loss, "loss"),
        regularizers=[build_node(r, "regularizer") for r in cfg.regularizers.values() if r],
    )


def net_factory(node: DictConfig, what: str) -> Callable[..., Any]:
    """A factory of the net ``node`` describes, taking what the data says (image size,
    channels, ...); the node is read when the family calls it, after the family has checked
    the data (so a model for other data fails with the family's one line, not an
    interpolation error)."""
    return functools.partial(build_node, node, what)
