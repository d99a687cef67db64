"""The error a user can fix: reported in one line, without a traceback."""

from __future__ import annotations

from hydra.errors import InstantiationException
from omegaconf.errors import OmegaConfBaseException


class UserError(Exception):
    """A mistake in the user's config or input: reported in one line, no traceback."""


def one_line(err: BaseException) -> str:
    """The user-facing message of a config/input error, on one line: the cause of a failed
    instantiation with the key it was building, an OmegaConf error with its key, else the
    first line of the message (the type's name when there is none)."""
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        key = next((ln for ln in str(err).splitlines() if ln.startswith("full_key:")), "")
        where = f" (building {key.replace('full_key: ', '')})" if key else ""
        return f"{one_line(err.__cause__)}{where}"
    if isinstance(err, OmegaConfBaseException):
        msg = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        return f"config: {msg}" + (f" (set {key}=... on the command line)" if key else "")
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
