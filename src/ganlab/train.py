"""``python -m ganlab``: train a GAN from the Hydra config. The only module that reads cfg.

Lightning, torch and the training code are imported when a run starts, not with this
module: ``python -m ganlab --help`` and ``--cfg job`` only need Hydra
(``benchmarks/startup.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

import ganlab.resolvers  # noqa: F401 - ${ganlab.mul:...}, before Hydra resolves the config
from ganlab.cli import check_command_line, exit_with_error
from ganlab.cluster import after_interruption, quiet_submitit
from ganlab.errors import UserError, one_line
from ganlab.metrics.registry import register_configured
from ganlab.rundir import hold, launched_rank
from ganlab.search import metric_direction, worst_value
from ganlab.values import check_root_values

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from ganlab.data.lightning import LightningData
    from ganlab.module import GANModule

log = logging.getLogger("ganlab")


def _quiet_third_party() -> None:
    """Silence third-party notices that say nothing about this run."""
    warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # Hydra's files
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings(
        "ignore", message=r".*does not have many workers.*"
    )  # tensors, no workers
    # Lightning's hint on any machine with SLURM installed (a login node, a job's step run
    # without srun): ganlab's SLURM jobs start their tasks with srun (submitit)
    warnings.filterwarnings("ignore", message=r".*`srun` command is available on your system.*")
    # frozen parts of a family (CycleGAN's semantic classifiers) are in eval mode by design
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda r: "litlogger" not in r.getMessage())


class _Console(logging.StreamHandler):
    """A handler writing to ``sys.stderr`` as it is when a record comes, not as it was when
    the handler was made (a stream replaced since, e.g. by pytest, may be closed)."""

    def emit(self, record: logging.LogRecord) -> None:
        if DEVICE_BANNER.match(record.getMessage()):  # to the run's log, off the console
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.handle(record)
            return
        self.stream = sys.stderr
        super().emit(record)


#: Lightning's lines on the devices ("GPU available: False, used: False", "TPU ..."), printed
#: when the Trainer is built: on the console they stood before a mistake's one error line
DEVICE_BANNER = re.compile(r"(GPU|TPU|HPU|IPU) available: ")


def _lightning_to_the_console() -> None:
    """Lightning's notices ("GPU available: ...") once, plainly, on the console, as when
    Lightning is imported before Hydra configures logging. Imported later (the command
    line imports it lazily, for a fast ``--help``), its loggers would propagate to the root
    logger and print each notice twice, once in Hydra's format."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if logger.propagate:
            logger.addHandler(_Console())
            logger.propagate = False


def _sweep_group() -> str | None:
    """W&B group of a multirun job: the sweep directory's name; None for a single run."""
    hc = HydraConfig.get()
    return Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None


OmegaConf.register_new_resolver("sweep_group", _sweep_group, replace=True)
OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)


def compose_config(
    overrides: Sequence[str] = (), run_dir: str | Path = "outputs/api"
) -> DictConfig:
    """The config that ``python -m ganlab <overrides>`` runs, for use from Python.

    Sets Hydra's runtime state so ``train(cfg)`` works outside the command line
    (tests, notebooks, benchmarks); the run writes to ``run_dir``.
    """
    GlobalHydra.instance().clear()
    with initialize_config_module("ganlab.conf", version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.override_dirname = ",".join(overrides)
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]  # as in a command-line job: Hydra's own config lives in HydraConfig
    return cfg


def build(
    cfg: DictConfig, overrides: Sequence[str] = ()
) -> tuple[pl.Trainer, GANModule, LightningData]:
    """Instantiate data, family (nets, loss), module, callbacks, loggers and trainer.
    ``overrides`` (the run's, saved in checkpoints) rebuild the resume command."""
    from ganlab.assemble import build_node, check_model, declare_family
    from ganlab.callbacks.checkpoint import Checkpoint
    from ganlab.callbacks.needs import needs_of
    from ganlab.cluster import job_id
    from ganlab.data.lightning import LightningData
    from ganlab.module import GANModule

    choices = dict(HydraConfig.get().runtime.choices)
    family = declare_family(cfg, choices)  # its phases say how many real batches a step takes
    check_model(family, cfg.model, choices)
    data = build_node(cfg.data, "data")
    data.serve(steps=cfg.steps, per_step=family.batches_per_step)  # the runner's facts
    spec = data.spec
    family.setup(spec, choices)
    family.use_data(data)
    family.check_batch(data.batch_size)
    optimizers = {name: build_node(node, f"optimizer_{name}") for name, node in cfg.optim.items()}
    module = GANModule(
        family,
        optimizers,
        seed=cfg.seed,
        ema=cfg.ema,
        ema_rampup=cfg.get("ema_rampup"),
        compile=cfg.get("compile", False),
    )
    module.build_info = {
        "config": OmegaConf.to_container(cfg, resolve=False),  # what resume compares
        "resolved": rebuilt_parts(cfg),  # what sample/evaluate/translate rebuild
        "spec": spec.to_dict(),
        "overrides": list(overrides),
        "slurm_job": job_id(),  # a requeued job knows its own run by it (ganlab.cluster)
    }
    register_configured(cfg)
    callbacks = [
        build_node(c, "callback")
        for c in cfg.callbacks.values()
        if c and needs_of(c).met(spec, family)
    ]
    check_logged(cfg.get("optimized_metric"), callbacks, data, family)
    # checkpoints last: a signal that lands during a step's evaluation or sample grid is
    # still saved at that step
    callbacks.sort(key=lambda c: isinstance(c, Checkpoint))
    loggers = [build_node(lg, "logger") for lg in cfg.logger.values() if lg]
    trainer = build_node(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    return trainer, module, LightningData(data)


def rebuilt_parts(cfg: DictConfig) -> dict[str, Any]:
    """The parts of ``cfg`` that the checkpoint commands rebuild, resolved: a checkpoint's
    config holds plain values, and loading one refuses any interpolation (``ganlab.trust``).
    (Resume compares the unresolved config, where ``${steps}`` stays itself when steps
    change.)"""
    from ganlab.trust import REBUILT, ROOT_VALUES

    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in resolved.items() if k in REBUILT or k in ROOT_VALUES}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train one run; returns its summary (status, final metrics, health flags).

    The run directory is locked while the run trains, and is only trained in again by
    resuming its run with the config it was trained with (``ganlab.resume``)."""
    _quiet_third_party()
    check_root_values(cfg)
    try:
        register_configured(cfg)
    except (InstantiationException, ValueError) as err:
        raise UserError(_one_line(err)) from err
    check_optimized_metric(cfg.get("optimized_metric"))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with hold(run_dir):
        return _train_in(cfg, run_dir)


def check_optimized_metric(key: str | None) -> None:
    """Before training: ``optimized_metric`` must be a metric ganlab logs (a typo would be
    found only when the run has trained, with nothing to return)."""
    from ganlab.metrics.registry import METRICS, registered

    if key and not registered(str(key)):
        known = ", ".join(k for k in METRICS if k.startswith("val/"))
        raise UserError(
            f"optimized_metric={key} is not a metric ganlab logs: choose one of {known} "
            "(CycleGAN's per direction: val/ab/<metric>, val/ba/<metric>)"
        )


def check_logged(key: str | None, callbacks: list[Any], data: Any, family: Any) -> None:
    """Before training: ``optimized_metric`` must be among the ``val/`` keys that this run's
    callbacks can log for its data and family (``may_log``), else the run would train and
    then have nothing to return; the message lists what this run does log. A callback that
    logs ``val/`` metrics declares them (``may_log``, as ``callbacks.schedule.Scheduled``);
    one that does not is taken to log none."""
    if not key or not str(key).startswith("val/"):
        return
    logged = set().union(*(c.may_log(data, family) for c in callbacks if hasattr(c, "may_log")))
    # a run that evaluates nothing (its metrics callback removed) returns nothing, as before
    if logged and str(key) not in logged:
        from ganlab.metrics.registry import order

        shown = ", ".join(sorted((k for k in logged if "class_frac" not in k), key=order))
        raise UserError(
            f"optimized_metric={key} is not logged by this run ({data.spec.words}, "
            f"family {type(family).__name__}): choose one of {shown}"
        )


def _train_in(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch

    from ganlab.callbacks.checkpoint import stop_on_signals
    from ganlab.checks import resolve_resume
    from ganlab.cluster import requeued_here
    from ganlab.outcome import finish, summarize
    from ganlab.resume import NOT_RESUMING, check_run_dir, record_overrides, resume_command

    overrides = list(HydraConfig.get().overrides.task)
    if cfg.get("resume") in NOT_RESUMING and requeued_here(run_dir):
        with open_dict(cfg):
            cfg.resume = "auto"  # a requeued SLURM job continues its own run
    if launched_rank() == 0:  # the other ranks work in rank 0's directory
        overrides = check_run_dir(OmegaConf.to_container(cfg, resolve=False), run_dir, overrides)
        record_overrides(run_dir, HydraConfig.get().output_subdir, overrides)
    ckpt_path, ckpt = resolve_resume(cfg.get("resume"), run_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    run_ids = ckpt.get("ganlab", {}).get("run_ids", {})  # logger class name -> run id
    wandb_id = next((v for k, v in run_ids.items() if "WandbLogger" in k), None)
    if wandb_id and "wandb" in cfg.logger:
        with open_dict(cfg):
            cfg.logger.wandb.id = wandb_id  # the resumed run continues its W&B run
    resume = resume_command(overrides, run_dir)
    with stop_on_signals():
        trainer, module, datamodule = _build_checked(cfg, overrides, ckpt_path, ckpt)
        del ckpt
        start = time.perf_counter()
        _fit(trainer, module, datamodule, ckpt_path, resume)
    summary = summarize(trainer, module, time.perf_counter() - start)
    if summary["status"] == "interrupted":
        summary["resume"] = resume
    if trainer.is_global_zero:
        finish(trainer, summary)
    return summary


def _build_checked(
    cfg: DictConfig, overrides: list[str], ckpt_path: Path | None, ckpt: dict[str, Any]
) -> tuple[pl.Trainer, GANModule, LightningData]:
    """``build``, then (before anything is written) check that the checkpoint to resume
    fits the module, then log the config."""
    from ganlab.checks import check_fits
    from ganlab.resume import warn_schedules

    try:
        trainer, module, datamodule = build(cfg, overrides)
    except (InstantiationException, OmegaConfBaseException, ValueError) as err:
        raise UserError(_one_line(err)) from err
    if ckpt_path is not None:
        check_fits(module.state_dict(), ckpt["state_dict"], ckpt_path)
        warn_schedules(ckpt["ganlab"], OmegaConf.to_container(cfg, resolve=False))
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return trainer, module, datamodule


def _fit(
    trainer: pl.Trainer, module: GANModule, datamodule: Any, ckpt_path: Path | None, resume: str
) -> None:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from ganlab.outcome import record_failure

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # the Checkpoint callback saved the step; report it below
        module.status = "interrupted"
    except UserError as err:  # a fault mid-run (a full disk, ...): recorded, then reported
        if trainer.is_global_zero:
            record_failure(Path(trainer.default_root_dir), module.g_step, err, resume)
        raise


def _optimized(cfg: DictConfig, summary: dict[str, Any]) -> float | None:
    """The value of ``optimized_metric`` that the job returns to a sweeper (Optuna, ...)."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    # A job that diverged, could not run (invalid, failed), or whose metric is inf/NaN
    # (reverse KL with no high-quality sample) scores the metric's worst value: Optuna ranks
    # the trial last and the search goes on. (NaN would stop it: hydra-optuna-sweeper 1.3
    # fails to record a NaN trial, hydra#2237.)
    value = summary["metrics"].get(name)
    not_finite = name in summary["metrics"] and value is None  # the summary's inf/NaN
    if summary["status"] in ("diverged", "invalid", "failed") or not_finite:
        return worst_value(name)
    if value is None and not summary["metrics"]:  # evaluation switched off: nothing to return
        log.warning("optimized_metric=%s: no metrics were logged; returning nothing", name)
        return None
    if value is None:
        message = f"optimized_metric={name!r} was not logged; logged: {list(summary['metrics'])}"
        if not _multirun():
            raise UserError(message)
        log.error("error: %s", message)  # the job's summary stands; the sweep goes on
        return worst_value(name)
    return value


def _one_line(err: BaseException) -> str:
    """The user-facing message of a config/input error, on one line."""
    return one_line(err)


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _job_not_run(err: Exception, status: str) -> dict[str, Any]:
    """A multirun job that could not run to its end, recorded and left behind so the sweep
    goes on: ``invalid`` (the user's config or input) or ``failed`` (anything else), with
    the one-line reason, in the job's ``summary.json`` (its steps: 0 when nothing was
    trained, None when unknown) and its W&B run."""
    reason = _one_line(err) if status == "invalid" else f"{type(err).__name__}: {_one_line(err)}"
    if status == "invalid":
        log.error("error: %s", reason)
    else:  # not the user's mistake: the traceback goes to the job's train.log
        log.error("job failed: %s", reason, exc_info=err)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = {
        "status": status,
        "reason": reason,
        "steps": 0 if status == "invalid" else None,
        "metrics": {},
        "health": {},
        "run_dir": str(run_dir),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    wandb = sys.modules.get("wandb")  # a run the job had started: close it before the next job
    if wandb is not None and wandb.run is not None:
        wandb.run.summary.update({"status": status, "reason": reason})
        wandb.finish(exit_code=1)
    return summary


def _train_job(cfg: DictConfig) -> dict[str, Any]:
    """``train(cfg)``; in a multirun, a job that cannot run is recorded (``_job_not_run``)
    instead of ending the sweep. A single run raises."""
    try:
        return train(cfg)
    except Exception as err:
        if not _multirun() or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        mistake = isinstance(err, (UserError, OmegaConfBaseException))
        return _job_not_run(err, "invalid" if mistake else "failed")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    """Entry point of ``python -m ganlab``: train and return ``optimized_metric``.

    A mistake in a single run is one ``error:`` line and exit code 2; in a multirun the
    job is marked ``invalid`` (or ``failed``) and the sweep goes on.
    """
    _lightning_to_the_console()
    try:
        summary = _train_job(cfg)
        if summary["status"] == "interrupted":  # the checkpoint is saved: exit as a shell
            after_interruption(summary.get("signal"))  # would, or requeue the SLURM job
        return _optimized(cfg, summary)
    except (UserError, OmegaConfBaseException) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        exit_with_error(err)


def main() -> None:
    """``python -m ganlab`` / ``ganlab``: check the overrides (group choices, keys, value
    types), then hand over to Hydra."""
    quiet_submitit()  # a sweep on SLURM without accounting: one sacct warning, not one a poll
    message = check_command_line(sys.argv[1:])
    if message:  # before any run: no run directory, no log file
        exit_with_error(UserError(message), in_log=False)
    _hydra_main()


if __name__ == "__main__":
    main()
