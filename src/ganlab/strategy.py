"""DDP for GANs: Lightning's process management without the DistributedDataParallel wrapper.

:class:`~ganlab.module.GANModule` averages G's and D's gradients itself, with one
flattened ``all_reduce`` after each backward (the StyleGAN2-ADA/StyleGAN3 design), so
the DDP reducer, which assumes one backward per forward and does not support the
double backward of a gradient penalty, is not needed. :class:`GANDDPStrategy` keeps
everything else of Lightning's ``ddp`` strategy: ranks, the process group (gloo on the
CPU, nccl on GPUs), barriers, collectives, rank-zero checkpointing, cluster
environments (SLURM, torchrun), and broadcasts the module's parameters and buffers from
rank 0 when fitting starts, so every rank starts from the same G, D and EMA of G.

Child ranks of a run started with Hydra are launched as *single runs of this job*:
``python -m ganlab <the job's own overrides> hydra.run.dir=<the job's output dir>``, not
by replaying ``sys.argv``. Lightning's default launcher replays ``sys.argv``, which under
``--multirun`` carries the whole sweep (``-m``, comma lists): every child would run the
sweep again. Here each job of a multirun launches its own children, which write nothing
of their own (no ``.hydra/``, no log file) into the job's directory; after the job the
process group is destroyed and the environment restored, so the next job of the sweep,
in the same process, starts fresh.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.strategies.launchers.subprocess_script import (
    _basic_subprocess_cmd,
    _ChildProcessObserver,
)
from lightning.fabric.utilities.distributed import (
    _destroy_dist_connection,
    _suggested_max_num_threads,
)
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from typing_extensions import override

log = logging.getLogger(__name__)

#: Variables the launcher (and Lightning's process-group setup) set in the launching
#: process; restored after the run so that a later run in the same process (the next
#: job of a multirun) is not mistaken for a child rank (``LOCAL_RANK`` set).
_DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")

#: Hydra overrides (``hydra.*``) of the job that the child ranks need too: they change
#: how the job composes its config or runs. Sweep, launcher, output and logging settings
#: are not passed on: a child is a single run writing into the job's directory.
_FORWARDED_HYDRA = (
    "hydra.job.chdir",
    "hydra.job.env_set",
    "hydra.job.env_copy",
    "hydra.searchpath",
)

#: Seconds rank 0 waits for its child ranks to exit after the run before killing them.
CHILD_EXIT_TIMEOUT = 120
#: Exit codes of a child rank that stopped cleanly on SIGINT/SIGTERM (a checkpoint saved
#: by all ranks together, as a shell reports a signal: 128 + its number)
STOP_CODES = frozenset({128 + signal.SIGINT, 128 + signal.SIGTERM})


class GANDDPStrategy(DDPStrategy):
    """Lightning's DDP strategy without the ``DistributedDataParallel`` wrapper.

    For LightningModules with manual optimization that average their own gradients
    across ranks (``ganlab.module.average_gradients``). Takes the arguments of
    ``DDPStrategy`` except the options of ``DistributedDataParallel`` itself
    (``find_unused_parameters``, ``static_graph``, ...), which have nothing to act on.

    Overrides, from Lightning's ``DDPStrategy``:

    - ``configure_ddp`` (called by ``setup`` when fitting, which otherwise wraps the
      module in DDP and registers its communication hooks): broadcasts the module's
      parameters and buffers from rank 0 instead. ``pre_backward``, ``post_backward``,
      ``teardown`` and the forward redirection only act on a DDP-wrapped model, so
      they are no-ops here.
    - ``_configure_launcher``: :class:`GANScriptLauncher` for ``start_method="popen"``
      (the default); ``spawn``/``fork``/``forkserver`` keep Lightning's launcher.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._ddp_kwargs:
            raise TypeError(
                f"GANDDPStrategy does not wrap the module in DistributedDataParallel, so the "
                f"DDP options {sorted(self._ddp_kwargs)} do nothing; remove them"
            )

    @override
    def _configure_launcher(self) -> None:
        if self._start_method == "popen":
            assert self.cluster_environment is not None
            self._launcher = GANScriptLauncher(
                self.cluster_environment, self.num_processes, self.num_nodes
            )
        else:
            super()._configure_launcher()

    @override
    def configure_ddp(self) -> None:
        module = self.lightning_module
        assert module is not None
        if module.automatic_optimization:
            raise ValueError(
                "GANDDPStrategy does not average gradients; it needs a LightningModule with "
                "manual optimization that averages them itself (as ganlab's GANModule does)"
            )
        log.debug("%s: broadcasting parameters and buffers from rank 0", type(self).__name__)
        _sync_module_states(self.model)


class GANScriptLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher (rank 0 starts ranks 1..N-1 of its node with
    ``subprocess.Popen``) with three changes:

    - A Hydra job's children run ``python -m ganlab`` with the job's own overrides
      (``HydraConfig.get().overrides.task``) as a single run in the job's output
      directory, instead of ``sys.argv`` (which under ``--multirun`` holds the sweep).
      Without Hydra (a plain script), children run ``sys.argv`` like Lightning's.
    - After the run, rank 0 waits for its children, destroys the process group and
      restores ``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK``/``LOCAL_RANK``/``WORLD_SIZE``,
      so another run can start in the same process (the next job of a multirun).
    - The number of torch threads per process is capped at cpus / processes (as
      Lightning does) but never raised: ganlab's ``threads`` setting is kept.

    When the cluster environment creates the processes (SLURM, torchrun, or a child
    started by this launcher), nothing is launched and nothing is cleaned up: exactly
    Lightning's behavior.
    """

    @override
    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        self.cluster_environment.validate_settings(
            num_devices=self.num_processes, num_nodes=self.num_nodes
        )
        _cap_threads(self.num_processes)
        if self.cluster_environment.creates_processes_externally:
            return function(*args, **kwargs)
        saved_env = {key: os.environ.get(key) for key in _DIST_ENV}
        observer: _Observer | None = None
        ok = False
        try:
            self._call_children_scripts()
            observer = _Observer(main_pid=os.getpid(), child_processes=self.procs)
            observer.start()
            result = function(*args, **kwargs)
            ok = True
            return result
        finally:
            if observer is not None:
                observer.stopped = True
            try:
                self._end_children(wait=ok)
            finally:  # also when a child failed: the next job starts from a clean slate
                _destroy_dist_connection()
                _restore(saved_env)
                self.procs = []

    @override
    def _call_children_scripts(self) -> None:
        # Lightning's _SubprocessScriptLauncher._call_children_scripts, with our command
        self._check_can_spawn_children()
        os.environ["MASTER_ADDR"] = self.cluster_environment.main_address
        os.environ["MASTER_PORT"] = str(self.cluster_environment.main_port)
        os.environ["NODE_RANK"] = str(self.cluster_environment.node_rank())
        os.environ["LOCAL_RANK"] = str(self.cluster_environment.local_rank())
        os.environ["WORLD_SIZE"] = f"{self.num_processes * self.num_nodes}"
        if self.num_processes < 2:
            return
        command, cwd = child_command()
        log.debug("launching %d child ranks: %s", self.num_processes - 1, command)
        for local_rank in range(1, self.num_processes):
            env = os.environ.copy()
            env["LOCAL_RANK"] = str(local_rank)
            self.procs.append(subprocess.Popen(command, env=env, cwd=cwd))

    def _end_children(self, wait: bool) -> None:
        """After a successful run, wait for the children and fail if one failed; after a
        failed one, kill them (they may be blocked in a collective with rank 0)."""
        failed = []
        for local_rank, proc in enumerate(self.procs, start=1):
            if wait:
                try:
                    proc.wait(timeout=CHILD_EXIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "rank %d did not exit %ds after the run; killing it",
                        local_rank,
                        CHILD_EXIT_TIMEOUT,
                    )
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            elif proc.returncode and proc.returncode not in STOP_CODES and wait:
                failed.append(f"local rank {local_rank} exited with code {proc.returncode}")
        if failed:
            raise RuntimeError("; ".join(failed))


def _restore(saved_env: dict[str, str | None]) -> None:
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class _Observer(_ChildProcessObserver):
    """Lightning's watchdog (kills everything when a child dies, so no rank hangs in a
    collective), which can be stopped before rank 0 ends its children itself, and which
    lets a child that stopped cleanly on a signal (``STOP_CODES``) go: rank 0 stops at the
    same step and is still writing its summary."""

    stopped = False

    @override
    def _run(self) -> bool:
        if self.stopped:
            return True
        codes = [proc.poll() for proc in self._child_processes]
        if any(c not in (None, 0) and c not in STOP_CODES for c in codes):
            return super()._run()  # a child failed: Lightning's watchdog ends them all
        return all(c is not None for c in codes)


def child_command() -> tuple[list[str], str | None]:
    """The command and working directory of the child ranks of this run."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return list(_basic_subprocess_cmd()), None
    hc = HydraConfig.get()
    cwd = hc.runtime.cwd or os.getcwd()
    run_dir = Path(cwd, hc.runtime.output_dir).resolve()
    command = [sys.executable, "-m", "ganlab", *hc.overrides.task]
    command += [o for o in hc.overrides.hydra if o.split("=", 1)[0].startswith(_FORWARDED_HYDRA)]
    command += [
        f"hydra.run.dir={_quote(str(run_dir))}",
        "hydra.output_subdir=null",  # rank 0 writes the job's .hydra/
        # no <job>.log of its own, and only errors on the console: rank 0 logs the rest
        "hydra/job_logging=disabled",
        "hydra/hydra_logging=disabled",
    ]
    return command, cwd


def _quote(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar."""
    return "'" + value.replace("'", "\\'") + "'"


def _cap_threads(num_processes: int) -> None:
    """At most cpus / processes torch threads per process (to avoid oversubscription),
    never more than the run asked for."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    limit = _suggested_max_num_threads(num_processes)
    if torch.get_num_threads() > limit:
        torch.set_num_threads(limit)


__all__ = ("GANDDPStrategy", "GANScriptLauncher", "child_command")
