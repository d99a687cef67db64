"""Which shipped data configs give a kind of data, for the suggestions of one-line errors.

Each data module class states its ``kind`` (and whether it is ``labelled``); the shipped
configs name their class in ``_target_``, so the suggestions follow the code, not a list.
"""

from __future__ import annotations

import importlib.resources
from functools import cache

from hydra.utils import get_class
from omegaconf import OmegaConf

from ganlab.data.base import DataModule


@cache
def _shipped() -> dict[str, tuple[str, bool]]:
    """data choice -> (kind, labelled) of the shipped data configs."""
    found = {}
    for file in sorted(importlib.resources.files("ganlab.conf").joinpath("data").iterdir()):
        if not file.name.endswith(".yaml"):
            continue
        node = OmegaConf.create(file.read_text())
        node = node.get("data", node)  # `@package _global_` files hold a `data:` node
        try:
            cls = get_class(node.get("_target_"))
        except Exception:  # a config that does not name a class
            continue
        if issubclass(cls, DataModule) and cls.kind:
            found[file.name[:-5]] = (cls.kind, cls.labelled)
    return found


def data_choices(kind: str, labelled: bool = False) -> list[str]:
    """The shipped ``data=`` choices of ``kind`` (only labelled ones when ``labelled``)."""
    return [name for name, (k, has) in _shipped().items() if k == kind and (has or not labelled)]
