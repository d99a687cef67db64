"""Build a run's family from its config: shared by training and the checkpoint commands."""

from __future__ import annotations

import functools
import importlib.resources
import logging
from collections.abc import Callable, Mapping
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

import ganlab.resolvers  # noqa: F401 - ${ganlab.mul:...} in the configs it builds
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
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
    family = declare_family(cfg, choices)
    check_model(family, cfg.model, choices or {})
    family.setup(spec, choices or {})
    return family


def declare_family(cfg: DictConfig, choices: Mapping[str, str] | None = None) -> Family:
    """The run's family before its nets are built (its phases, hence the batches per step it
    needs, are known): ``family`` gets the model's generator and discriminator as factories
    (the family calls them with what the data says), the loss and the regularizers; then the
    augmentation of what D sees, when ``augment`` names one (``Family.use_augment``; a
    config without it, as an older checkpoint's, has none). ``choices`` (Hydra's) name
    things in messages."""
    family = build_node(
        cfg.family,
        "family",
        generator=net_factory(cfg.model.generator, "generator"),
        discriminator=net_factory(cfg.model.discriminator, "discriminator"),
        loss=build_node(cfg.loss, "loss"),
        regularizers=[build_node(r, "regularizer") for r in cfg.regularizers.values() if r],
    )
    if cfg.get("augment"):  # augment=none is an empty node
        family.use_augment(build_node(cfg.augment, "augment"), choices)
    return family


def check_model(family: Family, model: DictConfig, choices: Mapping[str, str]) -> None:
    """``UserError`` (one line) when the model's nets are made for another kind of input
    (``model.input``: points, images, pairs, domains) than the family trains on: the nets
    would fail deep inside with a keyword they do not take."""
    kind, made_for = family.needs[0], model.get("input")
    if made_for is None or made_for == kind:
        return
    fits = "|".join(model_choices(kind)) or "..."
    model_name = choices.get("model", "<the checkpoint's>")
    family_name = choices.get("family", type(family).__name__)
    raise UserError(
        f"model={model_name} is made for {made_for}, but family={family_name} trains on "
        f"{kind}: choose model={fits}"
    )


@functools.cache
def _model_inputs() -> dict[str, str]:
    """model choice -> the input its shipped config says its nets take."""
    found = {}
    for file in sorted(importlib.resources.files("ganlab.conf").joinpath("model").iterdir()):
        if file.name.endswith(".yaml"):
            found[file.name[:-5]] = OmegaConf.create(file.read_text()).get("input")
    return found


def model_choices(kind: str) -> list[str]:
    """The shipped ``model=`` choices whose nets take ``kind``."""
    return [name for name, made_for in _model_inputs().items() if made_for == kind]


def net_factory(node: DictConfig, what: str) -> Callable[..., Any]:
    """A factory of the net ``node`` describes, taking what the data says (image size,
    channels, ...); the node is read when the family calls it, after the family has checked
    the data (so a model for other data fails with the family's one line, not an
    interpolation error)."""
    return functools.partial(build_node, node, what)
