"""What a checkpoint's config may ask ganlab to build.

A checkpoint holds its run's config, and the sample/evaluate/translate commands rebuild the
run's nets from it with ``hydra.utils.instantiate``. ``torch.load(weights_only=True)`` keeps
pickled code out, but a config names callables by string (``_target_``, at any depth) and
OmegaConf runs resolvers named in strings (``${oc.create:...}`` builds a node, which Hydra
then instantiates), so a crafted file could call any importable function
(``builtins.open``, ``shutil.copyfile``). ``trusted_config`` is the one check of every path
that loads a checkpoint (``ganlab.checkpoints``, ``ganlab.resume``): in plain Python, before
OmegaConf or Hydra sees the config, only the parts that are rebuilt are kept, every value
must be plain data (no interpolation, no resolver call), and of Hydra's instantiation keys
only a registered ``_target_`` and a boolean ``_partial_`` may appear.

The registry is declarative: classes *defined* in ganlab's modules of nets, families,
losses and data (a name re-exported there, ``ganlab.data.folder.Path``, is not one), and
an explicit list of other callables. ``GANLAB_TRUSTED_MODULES`` (comma-separated module
names) adds the modules of your own nets.

Where a class is defined is read from the modules' source when it says (``_defined_in``),
so checking a data module's name does not import it, and with it Lightning: ``sample`` and
``translate`` start without Lightning (``benchmarks/startup.py``).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
import re
from collections.abc import Callable
from typing import Any

import yaml

from ganlab.errors import UserError

#: modules whose classes a checkpoint may name (a class counts where it is defined)
TRUSTED_MODULES = (
    "ganlab.nets",
    "ganlab.families",
    "ganlab.losses",
    "ganlab.data",
    "ganlab.augment",
)
#: other callables a checkpoint may name, exactly
TRUSTED_CALLABLES = frozenset(
    {
        "ganlab.data.toy.ring",
        "ganlab.data.toy.grid",
        "torch.optim.Adam",
        "torch.optim.AdamW",
        "torch.optim.RMSprop",
        "torch.optim.SGD",
    }
)
#: the parts of a run's config that are rebuilt from a checkpoint (the rest is dropped)
REBUILT = ("family", "model", "loss", "regularizers", "augment", "data", "optim", "latent",
           "metrics")  # fmt: skip
#: root values the rebuilt parts interpolate (``${seed}``, ``${n_critic}``, ...)
ROOT_VALUES = ("seed", "steps", "n_critic", "ema", "ema_rampup", "threads")
ENV_VAR = "GANLAB_TRUSTED_MODULES"


def _modules() -> tuple[str, ...]:
    extra = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    return TRUSTED_MODULES + tuple(extra)


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def is_trusted(target: Any) -> bool:
    """True when ``target`` (a ``_target_`` value) names a registered callable. Nothing
    outside the trusted modules is imported to find out."""
    if not isinstance(target, str) or "${" in target:
        return False
    if target in TRUSTED_CALLABLES:
        return True
    modules = _modules()
    if not _within(target, modules):
        return False
    where = _defined_in(target, modules)
    if where is not None:  # the source says where the class is defined
        return _within(where, modules)
    obj = _locate(target)
    return inspect.isclass(obj) and _within(obj.__module__, modules)


def _locate(target: str) -> Any:
    """The object ``target`` names, or None when it cannot be imported. (Hydra's
    ``get_object`` would also log three lines of its own about it.)"""
    from hydra._internal.utils import _locate as locate

    try:
        return locate(target)
    except Exception:  # no such module or attribute, or a module that fails to import
        return None


@functools.lru_cache(maxsize=256)  # sources do not change while ganlab runs
def _defined_in(target: str, modules: tuple[str, ...], depth: int = 0) -> str | None:
    """The module whose source defines the class ``target`` at its top level, following
    ``from M import Name`` re-exports within ``modules``; ``""`` when the source shows that
    ``target`` is no class of theirs (a name imported from elsewhere, a function, an
    attribute of a name); None when only importing it can tell. Imports no module itself,
    only the packages above it (as ``importlib.util.find_spec`` does)."""
    module, _, name = target.rpartition(".")
    if depth > 8 or not module or not _within(module, modules):
        return ""
    source = _source(module)
    if source is None:  # not a module: an attribute of a name (``folder.Image.open``)
        return "" if _source(module.rpartition(".")[0]) is not None else None
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return ""
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    origin = f"{node.module}.{alias.name}"
                    return (
                        _defined_in(origin, modules, depth + 1)
                        if _within(node.module, modules)
                        else ""
                    )
    return None


def _source(module: str) -> str | None:
    """The source text of ``module``, or None when it is no module with a source file."""
    spec = _spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _spec(module: str) -> Any:
    """``find_spec(module)`` when each parent is a package (``find_spec`` would import a
    parent that is a plain module to look inside it), else None."""
    parent = module.rpartition(".")[0]
    if parent:
        above = _spec(parent)
        if above is None or above.submodule_search_locations is None:
            return None
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def trusted_config(config: Any, source: str) -> dict[str, Any]:
    """The parts of a checkpoint's run ``config`` that rebuilding needs, as plain values that
    nothing can run: ``UserError`` (one line, naming the key) for an interpolation or a
    resolver call, a ``_target_`` that is not registered, another of Hydra's instantiation
    keys (``_args_``, ``_call_``, ...), or a value that is not plain data. ``source`` names
    the checkpoint in the message.

    ganlab stores the config resolved; an older checkpoint's references to its own keys
    (``${seed}``, ``${latent.dim}``) are followed here, in plain Python, so OmegaConf and
    Hydra never see an interpolation (nor run a resolver) when they rebuild it."""
    if not isinstance(config, dict):
        raise UserError(f"{source}: its run config is not a mapping; not a ganlab checkpoint")
    kept = {k: v for k, v in config.items() if k in REBUILT or k in ROOT_VALUES}
    return _Literal(kept, source).value(kept, "")


#: the most references followed from one value (``${latent.dim}`` -> ``${model.latent_dim}``)
MAX_DEPTH = 16
#: the most values one config may expand to (references to lists of references would
#: otherwise grow exponentially); a run's config has a few hundred
MAX_VALUES = 100_000
_KEY = r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)"
#: the interpolations of an older checkpoint (ganlab's configs) that are followed, in plain
#: Python: a reference to one of its own keys, ``${seed}``, and a reference with a literal
#: default, ``${oc.select:model.pack,1}``; any other is refused
REFERENCE = re.compile(r"\$\{" + _KEY + r"\}")
SELECT = re.compile(r"\$\{oc\.select:\s*" + _KEY + r"\s*,\s*([\w.+-]+)\s*\}")
_ABSENT = object()
#: the leaves a checkpoint's config may hold
PLAIN = (str, int, float, bool, type(None))


class _Literal:
    """A checked copy of a checkpoint's config (``root``), with references followed."""

    def __init__(self, root: dict[str, Any], source: str) -> None:
        self.root, self.source, self.count = root, source, 0

    def refuse(self, where: str, what: str) -> UserError:
        return UserError(
            f"{self.source}: {where or '<root>'} {what}; a checkpoint's config may hold plain "
            "values only (and _target_: one of ganlab's nets, families, losses or data): "
            "refusing to load it"
        )

    def value(self, node: Any, where: str, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.refuse(where, f"expands the config past {MAX_VALUES:,} values")
        if isinstance(node, dict):
            return self.mapping(node, where, depth)
        if isinstance(node, (list, tuple)):
            return [self.value(v, f"{where}[{i}]", depth) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return self.reference(node, where, depth)
        if not isinstance(node, PLAIN):
            raise self.refuse(where, f"holds a {type(node).__name__}, not a plain value")
        return node

    def mapping(self, node: dict[Any, Any], where: str, depth: int) -> dict[str, Any]:
        if "_target_" in node:  # named first: the callable is what a crafted file is about
            _check_target(node["_target_"], where, self.source)
        out = {}
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str):
                raise self.refuse(where, f"has the key {key!r}, not a string")
            allowed = INSTANTIATE_KEYS.get(key)
            if key.startswith("_") and key.endswith("_") and not (allowed and allowed(value)):
                raise self.refuse(path, f"is Hydra's {key} (={_short(value)})")
            out[key] = self.value(value, path, depth)
        return out

    def reference(self, text: str, where: str, depth: int) -> Any:
        match = REFERENCE.fullmatch(text) or SELECT.fullmatch(text)
        if match is None or depth >= MAX_DEPTH:
            raise self.refuse(where, f"holds {_short(text)}, an interpolation")
        node = self.lookup(match.group(1))
        if node is _ABSENT and match.re is SELECT:  # the default: a plain word or number
            node = yaml.safe_load(match.group(2))
        if node is _ABSENT:
            raise self.refuse(where, f"holds {_short(text)}, a reference to nothing")
        return self.value(node, where, depth + 1)

    def lookup(self, key: str) -> Any:
        node: Any = self.root
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return _ABSENT
            node = node[part]
        return node


def _check_target(target: Any, where: str, source: str) -> None:
    if is_trusted(target):
        return
    if isinstance(target, str) and _within(target, _modules()) and _locate(target) is None:
        raise UserError(
            f"{source} asks to build {_short(target)} (at {where or '<root>'}), which this "
            "ganlab does not have (written by another version, or by your own code: its "
            f"module must be importable and allowed with {ENV_VAR}=<module>)"
        )
    raise UserError(
        f"{source} asks to build {_short(target)} (at {where or '<root>'}), which is not one "
        f"of ganlab's nets, families, losses or data: refusing to load it (your own "
        f"module's classes can be allowed with {ENV_VAR}=<module>)"
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Hydra's instantiation keys a checkpoint may hold, each with what it may be: the callable
#: (checked with the node, above) and whether it is a partial (ganlab's optimizers are);
#: ``_args_``, ``_call_``, ``_recursive_``, ``_convert_`` and the rest are refused
INSTANTIATE_KEYS: dict[str, Callable[[Any], bool]] = {
    "_target_": is_trusted,
    "_partial_": lambda value: isinstance(value, bool),
}
