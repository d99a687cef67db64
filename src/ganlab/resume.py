"""Resume that cannot silently go wrong: the checkpoint's config against the run's.

A checkpoint holds the config and the overrides of the run that wrote it. Resuming compares
that config with the one given now, key by key: a change of what is trained (loss, model,
data, batch size, optimizer, seed, ...) is refused in one line that lists the differences
and gives the command that resumes the run as it was; what only says how long to train or
what to record (``steps``, the intervals, loggers, evaluation callbacks) may change.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ganlab.checks import checkpoint_path, read_checkpoint
from ganlab.errors import UserError
from ganlab.rundir import refuse_overwrite
from ganlab.trust import trusted_config

log = logging.getLogger(__name__)

#: keys that may differ between a checkpoint's config and its resumed run
SAFE = (
    "steps",
    "*_every",
    "resume",
    "threads",
    "compile",
    "optimized_metric",
    "logger",
    "logger.*",
    "callbacks.*",
    "trainer.accelerator",
    "trainer.enable_progress_bar",
    "trainer.limit_train_batches",
    "trainer.log_every_n_steps",
    "data.num_workers",
    "data.root",
)
#: exceptions to SAFE: callbacks that change the training itself
UNSAFE = ("callbacks.lr_decay", "callbacks.lr_decay.*")
SHOWN = 4  # differences listed in the message
NOT_RESUMING = (None, "", "null", "never")


def is_safe(key: str) -> bool:
    """Whether config key ``key`` (dotted) may change when a run is resumed."""
    if any(fnmatchcase(key, p) for p in UNSAFE):
        return False
    return any(fnmatchcase(key, p) for p in SAFE)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value of a plain container (an empty mapping has no leaves)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: node}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, checkpoint's value, the value now) of the unsafe keys that differ."""
    a, b = flatten(old), flatten(new)
    missing = object()
    diffs = []
    for key in sorted(a.keys() | b.keys()):
        before, now = a.get(key, missing), b.get(key, missing)
        if before != now and not is_safe(key):
            diffs.append((key, before, now))
    return [(k, None if a_ is missing else a_, None if b_ is missing else b_)
            for k, a_, b_ in diffs]  # fmt: skip


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("~+")


def merge_overrides(base: Iterable[str], changes: Iterable[str]) -> list[str]:
    """``base`` with each override of ``changes`` replacing the one of the same key (or
    added); ``resume`` is dropped (the command adds it)."""
    merged = {_key(o): o for o in base}
    for override in changes:
        merged[_key(override)] = override
    merged.pop("resume", None)
    return list(merged.values())


def resume_command(overrides: Iterable[str], run_dir: Path) -> str:
    """The command line that continues the run in ``run_dir``."""
    words = [shlex.quote(o) for o in overrides if _key(o) != "resume"]
    words += ["resume=auto", "hydra.run.dir=" + shlex.quote(str(run_dir))]
    return "python -m ganlab " + " ".join(words)


def _show(value: Any) -> str:
    text = "(absent)" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_same_problem(
    state: dict[str, Any], config: dict[str, Any], path: Path, overrides: list[str], run_dir: Path
) -> list[str]:
    """The overrides that continue the checkpoint's run (its own, with the safe changes of
    ``overrides``); ``UserError`` when ``config`` (plain, unresolved) trains another
    problem than the checkpoint's."""
    if "config" not in state:  # an older ganlab: nothing to compare with
        log.warning("resume: %s holds no config to compare with this run's", path)
        return list(overrides)
    trusted_config(state.get("resolved", state["config"]), str(path))  # the one trust check
    kept = state.get("overrides", overrides)
    diffs = differences(state["config"], config)
    if diffs:
        listed = ", ".join(f"{k}: {_show(a)} -> {_show(b)}" for k, a, b in diffs[:SHOWN])
        more = f" and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else ""
        safe = [o for o in overrides if is_safe(_key(o))]
        command = resume_command(merge_overrides(kept, safe), run_dir)
        raise UserError(
            f"resume: {path} was trained with another config ({listed}{more}): resume it "
            f"with `{command}`, or start anew in another hydra.run.dir"
        )
    return merge_overrides(kept, overrides)


def check_run_dir(config: dict[str, Any], run_dir: Path, overrides: list[str]) -> list[str]:
    """Before a run trains in ``run_dir``: a directory that holds a run is only trained in
    again by resuming it, with the config it was trained with. Returns the overrides that
    describe the run (the checkpoint's, updated). ``config`` is the run's plain container."""
    resume = config.get("resume")
    if resume in NOT_RESUMING:
        refuse_overwrite(run_dir, resume_command(overrides, run_dir))
        return list(overrides)
    path = checkpoint_path(str(resume), run_dir)
    if path is None:  # resume=auto with nothing to resume: a fresh run
        return merge_overrides(overrides, [])
    if run_dir.resolve() not in path.resolve().parents:  # another run's checkpoint
        refuse_overwrite(run_dir, resume_command(overrides, run_dir))
    state = read_checkpoint(path)["ganlab"]
    check_steps_left(state, config, path)
    return check_same_problem(state, config, path, overrides, run_dir)


def check_steps_left(state: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """``UserError`` when the resumed run has trained ``steps`` already: a resume that trains
    nothing is refused before anything is written (Hydra's files, the summary)."""
    steps, done = config.get("steps"), int(state["g_step"])
    if isinstance(steps, int) and done >= steps:
        raise UserError(
            f"resume: {path} has trained {done} steps already and steps={steps}: nothing to "
            f"train, the run is left as it is (steps=<more than {done}> trains it longer)"
        )


def record_overrides(run_dir: Path, subdir: str | None, overrides: list[str]) -> None:
    """``<subdir>/overrides.yaml`` (Hydra's ``.hydra``) lists the overrides of the whole run:
    on resume, the checkpoint's own updated by the command's (Hydra wrote the command's)."""
    path = run_dir / subdir / "overrides.yaml" if subdir else None
    if path is not None and path.is_file():
        OmegaConf.save(OmegaConf.create(list(overrides)), path)


def warn_schedules(state: dict[str, Any], config: dict[str, Any]) -> None:
    """A resumed run with other ``steps``: schedules that span the run (``${steps}``) now
    end elsewhere than the steps done assumed."""
    before, now = state.get("config", {}).get("steps"), config.get("steps")
    if before is None or before == now:
        return
    spans = [k for k, v in flatten(config).items()
             if v == "${steps}" and k.startswith("callbacks.")]  # fmt: skip
    if spans:
        log.warning(
            "resume: steps %s -> %s: %s follow steps, so their schedule now ends at step %s "
            "(the %d steps done followed the old one)",
            before, now, ", ".join(spans), now, state["g_step"],
        )  # fmt: skip
