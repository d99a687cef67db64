"""The error a user can fix: reported in one line, without a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A mistake in the user's config or input: reported in one line, no traceback."""


def fail(message: str, status: int = 2) -> NoReturn:
    """End a command with one ``error: message`` line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def run_command(work: Callable[[], T], output: object = "the output") -> T:
    """``work()``, where a UserError or an OSError (a folder that cannot be written, a full
    disk: ``output`` is named when the error names no file) ends the command in one line,
    exit status 2."""
    try:
        return work()
    except UserError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write {err.filename or output}: {err.strerror}")


def one_line(err: BaseException) -> str:
    """The user-facing message of a config/input error, on one line: the cause of a failed
    instantiation with the key it was building, an OmegaConf error with its key, else the
    first line of the message (the type's name when there is none)."""
    if isinstance(err, _error_type("hydra.errors", "InstantiationException")):
        lines = str(err).strip().splitlines()
        key = next((ln for ln in lines if ln.startswith("full_key:")), "")
        where = f" (building {key.replace('full_key: ', '')})" if key else ""
        if err.__cause__:
            return f"{one_line(err.__cause__)}{where}"
        # Hydra's own refusals (a blocklisted target) wrap one sentence over several lines
        sentence = " ".join(ln.strip() for ln in lines if ln.strip() and ln != key)
        return f"{sentence}{where}"
    if isinstance(err, _error_type("omegaconf.errors", "OmegaConfBaseException")):
        msg = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        return f"config: {msg}" + (f" (set {key}=... on the command line)" if key else "")
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _error_type(module: str, name: str) -> Any:
    """The exception class ``module.name``, or a tuple that matches nothing when ``module``
    was never imported (then no error of its can exist): the commands beside training start
    without Hydra's machinery (``benchmarks/startup.py``)."""
    loaded = sys.modules.get(module)
    return getattr(loaded, name) if loaded is not None else ()
