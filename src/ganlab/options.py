"""``key=value`` options of the commands beside training, parsed by OmegaConf against a
dataclass of typed defaults: a mistake is one line naming the key."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from ganlab.errors import UserError

T = TypeVar("T")


HELP = ("-h", "--help")


def parse_options(
    schema: type[T],
    argv: Sequence[str],
    aliases: dict[str, str] | None = None,
    usage: str | None = None,
) -> T:
    """``argv`` (``key=value`` in Hydra's style) over the defaults of the dataclass
    ``schema``; unknown keys, values of the wrong type and a missing required value
    (``???``) are a ``UserError`` naming the key. ``aliases`` maps option names that
    cannot be field names (``class``) to their field (``class_``). ``-h``/``--help``
    prints ``usage`` (the command's docstring) and the options with their defaults, and
    exits 0."""
    if any(arg in HELP for arg in argv):
        print(help_text(schema, usage, aliases))
        sys.exit(0)
    base = OmegaConf.structured(schema)
    for arg in argv:
        if "=" not in arg:
            raise UserError(f"unknown argument {arg!r}; use key=value with keys: {_keys(base)}")
    aliases = aliases or {}
    argv = [aliases.get(a.split("=", 1)[0], a.split("=", 1)[0]) + "=" + a.split("=", 1)[1]
            for a in argv]  # fmt: skip
    try:
        given = OmegaConf.from_dotlist(list(argv))
        merged = OmegaConf.merge(base, given)
        OmegaConf.to_container(merged, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise UserError(_message(err, base, schema)) from None
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def help_text(schema: type, usage: str | None = None, aliases: dict[str, str] | None = None) -> str:
    """``usage`` and a line per option of the dataclass ``schema``: ``key=default`` (or
    what a required key takes), its type."""
    names = {field: option for option, field in (aliases or {}).items()}
    lines = [(usage or "").strip(), "", "options (key=value; default shown):"]
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "???"
        shown = f"{f.metadata.get('required', '...')} (required)" if default == "???" else default
        lines.append(f"  {names.get(f.name, f.name)}={shown}".ljust(34) + f"  {f.type}")
    return "\n".join(lines).lstrip()


def _keys(base: Any) -> str:
    return ", ".join(str(k).rstrip("_") for k in base)


def _message(err: OmegaConfBaseException, base: Any, schema: type) -> str:
    field = str(getattr(err, "full_key", None) or getattr(err, "key", ""))
    key = field.rstrip("_")
    if isinstance(err, MissingMandatoryValue):  # the field's metadata may say what it takes
        fields = getattr(schema, "__dataclass_fields__", {})
        what = fields[field].metadata.get("required", "...") if field in fields else "..."
        return f"{key}={what} is required"
    if isinstance(err, ConfigKeyError):
        return f"unknown option {key!r}; use key=value with keys: {_keys(base)}"
    return f"{key}: {str(err).splitlines()[0]}"


def check_device(name: str) -> str:
    """``name`` when it is a device this machine has; ``UserError`` (one line) otherwise."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"device={name} is not a device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name}: this machine has no usable CUDA GPU; use device=cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise UserError(f"device={name}: this machine has {count} CUDA GPU(s) (cuda:0..)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name}: MPS is not available here; use device=cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device={name}: use cpu, cuda or cuda:N")
    return name


def at_most(value: int, maximum: int, key: str, why: str) -> int:
    """``value``, or ``UserError`` when it exceeds ``maximum`` (``why`` says why there is one)."""
    if value > maximum:
        raise UserError(f"{key}={value} is more than {maximum:,} ({why})")
    return value
