"""The root values of a run's config (``steps``, ``seed``, the intervals, ...), checked in
one place before anything is built: a wrong type or range is one line naming the key."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ganlab.errors import UserError

#: root key -> (kind, smallest allowed value or None); a missing key is not checked
ROOT_VALUES: dict[str, tuple[type, float | None]] = {
    "seed": (int, 0),
    "steps": (int, 1),
    "n_critic": (int, 1),
    "eval_every": (int, 1),
    "sample_every": (int, 1),
    "log_every": (int, 1),
    "ckpt_every": (int, 1),
    "threads": (int, 0),
    "ema": (float, 0.0),
}
WORDS = {int: "an integer", float: "a number"}


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (kind is float and isinstance(value, float))


def check_root_values(cfg: DictConfig) -> None:
    """``UserError`` for the first root value of the wrong type or below its minimum."""
    for key, (kind, minimum) in ROOT_VALUES.items():
        if key not in cfg:
            continue
        value = cfg[key]
        if not _fits(value, kind):
            raise UserError(f"{key}={value}: expected {WORDS[kind]}")
        if minimum is not None and value < minimum:
            raise UserError(f"{key} must be >= {minimum}, got {value}")
