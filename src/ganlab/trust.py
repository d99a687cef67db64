"""What a checkpoint's config may ask ganlab to build.

A checkpoint holds its run's config, and the sample/evaluate commands rebuild the run's
nets from it with ``hydra.utils.instantiate``. ``torch.load(weights_only=True)`` keeps
pickled code out, but a config names callables by string (``_target_``), so a crafted file
could name any importable function (``pathlib.Path.write_text``, ``os.system``). Before
anything is built, every ``_target_`` in the parts that are rebuilt is checked against
this registry, and only those parts are kept.

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
import importlib.util
import inspect
import os
from collections.abc import Iterator
from typing import Any

from ganlab.errors import UserError

#: modules whose classes a checkpoint may name (a class counts where it is defined)
TRUSTED_MODULES = ("ganlab.nets", "ganlab.families", "ganlab.losses", "ganlab.data")
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
REBUILT = ("family", "model", "loss", "regularizers", "data", "optim", "latent")
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
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception:  # not importable: hydra would fail on it anyway
        return False
    return inspect.isclass(obj) and _within(obj.__module__, modules)


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


def targets(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every ``_target_`` in the plain container ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                yield where or "<root>", value
            else:
                yield from targets(value, path)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from targets(value, f"{where}[{i}]")


def trusted_config(config: dict[str, Any], source: str) -> dict[str, Any]:
    """The parts of a checkpoint's run ``config`` that rebuilding needs, once every
    ``_target_`` in them is registered; ``UserError`` (one line) naming the first that is
    not. ``source`` names the checkpoint in the message."""
    if not isinstance(config, dict):
        raise UserError(f"{source}: its run config is not a mapping; not a ganlab checkpoint")
    kept = {k: v for k, v in config.items() if k in REBUILT or k in ROOT_VALUES}
    for where, target in targets(kept):
        if not is_trusted(target):
            raise UserError(
                f"{source} asks to build {target!r} (at {where}), which is not one of "
                f"ganlab's nets, families, losses or data: refusing to load it (your own "
                f"module's classes can be allowed with {ENV_VAR}=<module>)"
            )
    return kept
