"""The command line of ``python -m ganlab``, checked before Hydra runs, and how a mistake
is reported: one ``error:`` line on stderr (and in the run's ``train.log``), exit code 2.

Hydra reports unknown choices, unknown keys and additions over seven to a dozen lines, and
never checks a value's type (``steps=abc`` fails deep inside, without naming the key). The
overrides are read here with Hydra's own parsers, and checked against the config that
Hydra composes from the same group choices:

- ``group=name`` must name a config of that group (Hydra's search path included);
- ``key=value`` must name a key of the config (else the nearest keys are suggested), and
  the value must have the type of the key's default (a number for ``optim.d.lr``);
- ``+key=value`` may add to a node (``+callbacks.x._target_=...``), not a new root key:
  the root of the config is closed, so an addition there would be silently ignored.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from hydra import compose, initialize_config_module
from hydra._internal.utils import get_args_parser  # the parser of @hydra.main's arguments
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganlab.errors import fail, one_line

_ABSENT = object()


def exit_with_error(err: BaseException | str, in_log: bool = True) -> NoReturn:
    """Report a mistake in one ``error:`` line, on stderr and (``in_log``, from inside a
    run) in the run's log file, and exit with code 2."""
    reason = err if isinstance(err, str) else one_line(err)
    record = logging.LogRecord("ganlab", logging.ERROR, __file__, 0, f"error: {reason}", None, None)
    for handler in logging.getLogger().handlers if in_log else []:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    fail(reason)


def check_command_line(argv: Sequence[str]) -> str | None:
    """The one-line error for the first mistake among the overrides in ``argv``, or None
    (also when the command is not checked here: another primary config, a malformed
    override, a config that Hydra cannot compose: Hydra reports those)."""
    args, _ = get_args_parser().parse_known_args(list(argv))
    if args.config_dir or args.config_path or args.config_name:
        return None  # another primary config: Hydra reports its own mistakes
    malformed = next(filter(None, map(_unparsable, args.overrides)), None)
    if malformed:
        return malformed
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
        search = _search_without_multirun(parsed, args.multirun)
        if search:
            return search
        with warnings.catch_warnings(), initialize_config_module("ganlab.conf", version_base="1.3"):
            warnings.simplefilter("ignore")  # Hydra warns again about a missing folder
            loader = GlobalHydra.instance().config_loader()
            return _check(loader, parsed, args.overrides)
    except (HydraException, OmegaConfBaseException):
        return None


def _unparsable(override: str) -> str | None:
    """The one-line error for an override that Hydra's grammar cannot read (``steps=[1,2``),
    or None. (Hydra prints its parser's text and exits with code 1.)"""
    try:
        OverridesParser.create().parse_override(override)
    except HydraException as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "malformed"
        return (
            f"{override}: not an override ({reason}); write key=value, a list as "
            "key=[a,b], and quote a value with brackets, commas or spaces: 'key=\"a b\"'"
        )
    return None


#: the config group whose configs run a search (a sweeper over multirun jobs)
SEARCH_GROUP = "hparams_search"


def _search_without_multirun(parsed: list[Override], multirun: bool) -> str | None:
    """A search chosen without ``-m`` would train one plain run and search nothing."""
    chosen = next((o for o in parsed if o.key_or_group == SEARCH_GROUP and not o.is_delete()
                   and o.value() not in (None, "null")), None)  # fmt: skip
    if chosen is None or multirun:
        return None
    return (
        f"{chosen.input_line} runs a search of many jobs: add -m "
        f"(python -m ganlab -m {chosen.input_line} ...)"
    )


def unknown_choice(argv: Sequence[str]) -> str | None:
    """The one-line error for a ``group=option`` override (or sweep ``group=a,b``) naming
    no config in Hydra's search path, or None."""
    args, _ = get_args_parser().parse_known_args(list(argv))
    if args.config_dir or args.config_path or args.config_name:
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
        with warnings.catch_warnings(), initialize_config_module("ganlab.conf", version_base="1.3"):
            warnings.simplefilter("ignore")
            loader = GlobalHydra.instance().config_loader()
            return next(_unknown_options(loader, parsed, args.overrides), None)
    except HydraException:
        return None  # a malformed override: Hydra's own message names it


def _check(loader: ConfigLoader, parsed: list[Override], overrides: list[str]) -> str | None:
    message = next(_unknown_options(loader, parsed, overrides), None)
    if message:
        return message
    groups = [o for o in parsed if _is_group(loader, o, overrides)]
    values = [o for o in parsed if o not in groups and not o.key_or_group.startswith("hydra")]
    if not values:
        return None
    hydra_lines = [o.input_line for o in parsed if o.key_or_group.startswith("hydra.")]
    base = compose("train", overrides=[_first(o) for o in groups] + hydra_lines)
    group_names = loader.list_groups("")
    for override in values:
        message = _check_value(base, override, group_names)
        if message:
            return message
    return None


# ---------------------------------------------------------------- group choices
def _is_group(loader: ConfigLoader, override: Override, overrides: list[str]) -> bool:
    key = override.key_or_group
    return bool(loader.get_group_options(key, config_name="train", overrides=overrides))


def _unknown_options(
    loader: ConfigLoader, parsed: list[Override], overrides: list[str]
) -> Iterator[str]:
    for override in parsed:
        names = _chosen_names(override)
        group = override.key_or_group
        options = loader.get_group_options(group, config_name="train", overrides=overrides)
        if options and _not_a_name(override):  # Hydra: "Config group override must be ..."
            text = override.input_line.split("=", 1)[-1]
            yield f"{group}={text}: expected the name of a {group} config: {', '.join(options)}"
        for name in names if options else []:
            if name not in options:
                yield f"unknown {group} {name!r}; choose one of: {', '.join(sorted(options))}"


def _chosen_names(override: Override) -> list[str]:
    """The config names an override chooses: one, or each of a sweep's list; none for a
    deletion, null, a glob, a range or a value that is not a name."""
    value = override.value()
    if override.is_delete():
        return []
    if isinstance(value, ChoiceSweep):
        return [name for name in override.sweep_string_iterator() if name != "null"]
    return [value] if isinstance(value, str) else []


def _not_a_name(override: Override) -> bool:
    """A group override whose value is a number, a bool or a mapping (not a config name)."""
    if override.is_delete() or override.is_sweep_override():
        return False
    return isinstance(override.value(), (int, float, bool, dict))


def _first(override: Override) -> str:
    """A group override with a sweep's first choice (the config's keys are the same)."""
    if not override.is_sweep_override():
        return override.input_line
    first = next(iter(override.sweep_string_iterator()))
    return f"{override.get_key_element()}={first}"


# ---------------------------------------------------------------- keys and values
def _keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _keys(node._get_node(key), path)


def _lookup(base: DictConfig, key: str) -> Any:
    """The node at dotted ``key`` (unresolved), or ``_ABSENT``."""
    node: Any = base
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():  # "???" counts
            return _ABSENT
        node = node._get_node(part)
    return node


def _nearest(key: str, base: DictConfig, groups: list[str]) -> str:
    candidates = sorted({*_keys(base), *groups} - {"hydra"})
    close = difflib.get_close_matches(key, candidates, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _check_value(base: DictConfig, override: Override, groups: list[str]) -> str | None:
    key = override.key_or_group
    root = key.split(".")[0]
    node = _lookup(base, key)
    if override.is_add() or override.is_force_add():
        if root not in base and root not in groups:
            return (
                f"unknown key {root!r} ({override.input_line}): ganlab's config has no such key, "
                f"so it would be ignored{_nearest(root, base, groups)}"
            )
        if override.is_add() and node is not _ABSENT:
            return f"{key} is already in the config: set it with {key}=... (no '+')"
        return None
    if node is _ABSENT:
        return f"unknown key {key!r} ({override.input_line}){_nearest(key, base, groups)}"
    if override.is_delete():
        return None
    return _check_type(key, node, override)


def _values(override: Override) -> list[Any]:
    value = override.value()
    if isinstance(value, (ChoiceSweep, RangeSweep)):
        return list(override.sweep_iterator())
    return [] if override.is_sweep_override() else [value]


#: keys whose values take several kinds (Lightning's ``devices``: 2, "auto", [0, 1], ...):
#: the library checks them itself
POLYMORPHIC = ("trainer.",)


def _check_type(key: str, node: Any, override: Override) -> str | None:
    """A value must have its default's kind: a bool, or a number. A root value whose default
    is an integer must be an integer (``steps``, ``seed``, the intervals); below the root an
    integer default (a penalty weight of 10) may take any number."""
    if key.startswith(POLYMORPHIC):
        return None
    try:
        default = OmegaConf.to_object(node) if OmegaConf.is_config(node) else node._value()
        if isinstance(default, str) and "${" in default:  # an interpolation: its value
            default = node._dereference_node()._value()
    except Exception:  # an interpolation that needs Hydra's runtime: not checked
        return None
    if _numbers(default):  # Adam's betas: a fixed number of numbers
        return _check_numbers(key, default, override)
    wanted = _kind(default)
    if wanted is None:
        return None
    if wanted == "an integer" and "." in key:
        wanted = "a number"
    for value in _values(override):
        if value not in (None, "???") and _kind(value, wanted) != wanted:  # "???": Hydra's
            text = override.input_line.split("=", 1)[-1]
            return f"{key}={text}: expected {wanted} (like {key}={default})"
    return None


def _numbers(value: Any) -> bool:
    """Whether ``value`` is a non-empty list of numbers."""
    return isinstance(value, list) and bool(value) and all(_kind(v) for v in value)


def _check_numbers(key: str, default: list, override: Override) -> str | None:
    """A list of numbers takes as many numbers as its default has."""
    for value in _values(override):
        if value is not None and not (_numbers(value) and len(value) == len(default)):
            text = override.input_line.split("=", 1)[-1]
            return f"{key}={text}: expected a list of {len(default)} numbers (like {key}={default})"
    return None


def _kind(value: Any, wanted: str | None = None) -> str | None:
    if isinstance(value, dict):  # a node of settings (regularizers: {}), not a value
        return "a mapping of settings"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a number" if wanted == "a number" else "an integer"
    if isinstance(value, float):
        return "a number"
    return None if wanted is None else "other"
