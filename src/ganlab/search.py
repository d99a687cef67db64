"""Optuna searches (``hparams_search``): the direction of the optimized metric, the value a
job that cannot be scored returns, and the study's storage, direction and sampler seed
checked before the first trial."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab.errors import fail, one_line
from ganlab.metrics.registry import metric, register_configured

log = logging.getLogger(__name__)
SQLITE = "sqlite:///"
DIRECTIONS = {"min": "minimize", "max": "maximize"}


def metric_direction(key: str | None) -> str:
    """``minimize`` or ``maximize``: how a sweeper should treat ``key`` (resolver
    ``${metric_direction:${optimized_metric}}`` of the hparams_search configs)."""
    goal = metric(key).goal if key else None
    if goal is None:
        raise ValueError(
            f"optimized_metric={key} has no direction (lower or higher better) to optimize: "
            "choose a registered metric such as val/fid, val/rkl, val/hq or val/modes, "
            "or set hydra.sweeper.direction=minimize|maximize"
        )
    return DIRECTIONS[goal]


def worst_value(key: str | None) -> float:
    """The worst value ``key`` can take (+inf when lower is better, -inf when higher is),
    NaN when it has no direction: what a diverged job returns to a sweeper."""
    goal = metric(key).goal if key else None
    return {"min": math.inf, "max": -math.inf}.get(goal, math.nan)


class OptunaStudy(Callback):
    """Before an Optuna search (a sweeper with ``storage`` and ``direction``): the folder
    of its SQLite file exists, its direction agrees with ``optimized_metric``, and a study
    that already has trials is resumed with the sampler's seed moved on by their number
    (the same seed would draw the first trials' parameters again). A user's metrics
    (``+metrics=<name>``) are registered first, so that one of them can be optimized. Other
    sweepers: nothing.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "storage" not in sweeper or "direction" not in sweeper:
            return
        try:  # a user's metric (+metrics=...) has its direction once registered
            register_configured(config)
        except (InstantiationException, ValueError) as err:
            fail(one_line(err))
        self._check_direction(config.get("optimized_metric"), sweeper)
        storage = sweeper.storage
        if not (isinstance(storage, str) and storage.startswith(SQLITE)):
            return
        Path(storage[len(SQLITE) :].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
        done = _trials_in(storage, sweeper.study_name)
        if not done:
            return
        seed = OmegaConf.select(sweeper, "sampler.seed")
        log.info("study %s: resuming after %d trials (%s)", sweeper.study_name, done, storage)
        if seed is not None:
            with open_dict(sweeper):
                sweeper.sampler.seed = seed + done

    @staticmethod
    def _check_direction(key: str | None, sweeper: DictConfig) -> None:
        goal = metric(key).goal if key else None
        direction = OmegaConf.select(sweeper, "direction", throw_on_resolution_failure=False)
        direction = getattr(direction, "name", direction)  # the sweeper's default is an Enum
        if goal is None:
            if direction is None:  # the resolver refused: say why in one line
                fail(f"optimized_metric={key} has no direction to optimize: choose a "
                      "metric such as val/fid, val/rkl, val/hq or val/modes")  # fmt: skip
            return  # an unranked metric with a direction set by hand
        if isinstance(direction, str) and direction != DIRECTIONS[goal]:
            fail(f"hydra.sweeper.direction={direction} but optimized_metric={key} is "
                  f"better {'lower' if goal == 'min' else 'higher'}: set "
                  f"hydra.sweeper.direction={DIRECTIONS[goal]}")  # fmt: skip


def _trials_in(storage: str, study_name: str | None) -> int:
    """How many trials the study ``study_name`` in ``storage`` holds (0 when none)."""
    import optuna

    names = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    return names.get(study_name, 0)
