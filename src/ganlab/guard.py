"""The Hydra callback that guards a run directory: before a single run writes anything into
it (Hydra's ``.hydra/`` files included), lock it and check it, so that a refused command
leaves the directory untouched (``ganlab.rundir``: the lock and the overwrite rule;
``ganlab.resume``: the resume checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from ganlab.cli import exit_with_error
from ganlab.cluster import requeued_here
from ganlab.errors import UserError
from ganlab.resume import NOT_RESUMING, check_run_dir
from ganlab.rundir import acquire, launched_rank, release


class RunDirGuard(Callback):
    """Hydra callback: before a single run writes anything into its directory, lock it and
    check it (no run to overwrite, or a resume that fits; see ``ganlab.resume``). A problem
    is one ``error:`` line and exit code 2, as for any mistake."""

    _run_dir: Path | None = None

    def on_run_end(self, config: Any, **kwargs: Any) -> None:
        if self._run_dir is not None:
            release(self._run_dir)

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        if launched_rank() != 0:
            return
        try:
            run_dir = Path(str(config.hydra.run.dir))
        except Exception:  # a run dir that needs Hydra's runtime: train() checks it
            return
        if not run_dir.is_dir():  # nothing there to overwrite; train() locks it (and a
            return  # timestamped name resolved again may differ by a second)
        try:
            task = OmegaConf.to_container(config, resolve=False)
            task.pop("hydra", None)
            if task.get("resume") in NOT_RESUMING and requeued_here(run_dir):
                task["resume"] = "auto"  # a requeued SLURM job continues its own run
            overrides = list(config.hydra.overrides.task)
            check_run_dir(task, run_dir, overrides)  # refused: not even the lock is touched
            if acquire(run_dir):
                self._run_dir = run_dir
            check_run_dir(task, run_dir, overrides)  # again, now that no other run can write
        except UserError as err:
            release(run_dir)
            exit_with_error(err, in_log=False)  # the directory is left as it was
