"""``python -m ganlab``: train a GAN from the Hydra config. The only module that reads cfg."""

from __future__ import annotations

import importlib.resources
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ganlab.callbacks.checkpoint import stop_on_signals
from ganlab.checks import check_compatible, check_pairing, resolve_resume
from ganlab.errors import UserError
from ganlab.module import GANModule
from ganlab.sweep import metric_direction, worst_value

log = logging.getLogger("ganlab")


def _quiet_third_party() -> None:
    """Silence third-party notices that say nothing about this run."""
    warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")  # Hydra's files
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings(
        "ignore", message=r".*does not have many workers.*"
    )  # tensors, no workers
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(lambda r: "litlogger" not in r.getMessage())


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


def _build(node: DictConfig, what: str, **kwargs: Any) -> Any:
    log.info("Instantiating %s <%s>", what, node.get("_target_"))
    return hydra.utils.instantiate(node, **kwargs)


def _net_kwargs(cfg: DictConfig, datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """What an image network learns from the data: image size, channels and, for a
    class-conditional model, the number of classes."""
    choices = HydraConfig.get().runtime.choices
    model_input = cfg.model.get("input", "vector")
    check_pairing(
        model_input,
        "image" if hasattr(datamodule, "image_shape") else "vector",
        bool(cfg.model.get("conditional")),
        getattr(datamodule, "num_classes", 0),
        model=choices.get("model"),
        data=choices.get("data"),
    )
    if model_input != "image":
        return {}
    kwargs = {"image_size": datamodule.image_size, "channels": datamodule.channels}
    if cfg.model.get("conditional"):
        kwargs["num_classes"] = datamodule.num_classes
    return kwargs


def build(cfg: DictConfig) -> tuple[pl.Trainer, GANModule, pl.LightningDataModule]:
    """Instantiate data, networks, loss, module, callbacks, loggers and trainer from cfg."""
    datamodule = _build(cfg.data, "data", steps=cfg.steps, batches_per_step=cfg.n_critic)
    net_kwargs = _net_kwargs(cfg, datamodule)
    module = GANModule(
        generator=_build(cfg.model.generator, "generator", **net_kwargs),
        discriminator=_build(cfg.model.discriminator, "discriminator", **net_kwargs),
        loss=_build(cfg.loss, "loss"),
        regularizers=[_build(r, "regularizer") for r in cfg.regularizers.values() if r],
        optimizer_g=_build(cfg.optim.g, "optimizer_g"),
        optimizer_d=_build(cfg.optim.d, "optimizer_d"),
        latent_dim=cfg.latent.dim,
        latent_dist=cfg.latent.dist,
        n_critic=cfg.n_critic,
        seed=cfg.seed,
        ema=cfg.ema,
        ema_rampup=cfg.get("ema_rampup"),
        num_classes=net_kwargs.get("num_classes", 0),
    )
    module.build_info = {
        "config": OmegaConf.to_container(cfg, resolve=False),
        "net_kwargs": dict(net_kwargs),
    }
    callbacks = [_build(c, "callback") for c in cfg.callbacks.values() if c]
    loggers = [_build(lg, "logger") for lg in cfg.logger.values() if lg]
    trainer = _build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    return trainer, module, datamodule


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train one run; returns its summary (status, final metrics, health flags)."""
    _quiet_third_party()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    hydra_cfg = HydraConfig.get()
    ckpt_path, resumed = resolve_resume(cfg.get("resume"), Path(hydra_cfg.runtime.output_dir))
    wandb_id = resumed.get("run_ids", {}).get("WandbLogger")
    if wandb_id and "wandb" in cfg.logger:
        with open_dict(cfg):
            cfg.logger.wandb.id = wandb_id  # the resumed run continues its W&B run
    with stop_on_signals():
        try:
            trainer, module, datamodule = build(cfg)
            key = "sample_every" if hasattr(datamodule, "image_shape") else "eval_every"
            interval = (key, cfg[key])
            check_compatible(module, dict(hydra_cfg.runtime.choices), cfg.steps, interval)
        except (InstantiationException, OmegaConfBaseException, ValueError) as err:
            raise UserError(_one_line(err)) from err
        for logger in trainer.loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        start = time.perf_counter()
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except SIGTERMException:  # the Checkpoint callback saved the step; report it below
            module.status = "interrupted"
    summary = _summarize(trainer, module, time.perf_counter() - start)
    if trainer.is_global_zero:
        _finish(trainer, summary)
    return summary


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no inf/nan


def _summarize(trainer: pl.Trainer, module: GANModule, seconds: float) -> dict[str, Any]:
    metrics = {k: _finite(float(v)) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    health = next((c for c in trainer.callbacks if hasattr(c, "raised")), None)
    scorer = next((c.scorer for c in trainer.callbacks if hasattr(c, "scorer")), None)
    signal_name = next(
        (c.interrupted_by for c in trainer.callbacks if hasattr(c, "interrupted_by")), None
    )
    return {
        "status": "completed" if module.status == "running" else module.status,
        "steps": module.g_step,
        "seconds": round(seconds, 2),
        "metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith("val/")},
        "health": getattr(health, "raised", {}),
        **({"metrics_provenance": scorer.provenance} if scorer and scorer.provenance else {}),
        **({"mode_fractions": scorer.fractions} if scorer and scorer.fractions else {}),
        "run_dir": str(trainer.default_root_dir),
        **({"signal": signal_name} if module.status == "interrupted" else {}),
    }


def _finish(trainer: pl.Trainer, summary: dict[str, Any]) -> None:
    run_dir = Path(trainer.default_root_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for logger in trainer.loggers:
        if summary["status"] == "diverged":
            logger.log_metrics({"diverged": 1.0}, step=summary["steps"])
            logger.save()
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "summary"):  # W&B: final figures, then close before the next job
            experiment.summary.update({"status": summary["status"], **summary["metrics"]})
            experiment.finish()
    m = summary["metrics"]
    line = f"run dir: {run_dir}\nfinished {summary['steps']} steps in {summary['seconds']:.1f}s"
    if "val/fid" in m:
        extractor = summary.get("metrics_provenance", {}).get("extractor", "")
        line += f"; FID ({extractor} features) {m['val/fid']:.4g}"
        line += f", modes {m['val/modes']:.0f}" if "val/modes" in m else ""
    elif "val/hq" in m:
        line += f"; modes {m['val/modes']:.0f}, high quality {m['val/hq']:.1f}%"
        rkl = m["val/rkl"]
        line += f", reverse KL {rkl:.3f}" if rkl is not None else ", reverse KL inf"
    elif "val/mean" in m:
        line += f"; generated mean {m['val/mean']:.3f}, std {m['val/std']:.3f}"
    if summary["health"]:
        line += f"\nhealth flags: {', '.join(summary['health'])}"
    if summary["status"] != "completed":
        line += f"\nstatus: {summary['status']} at step {summary['steps']}"
    print(line, flush=True)


def _optimized(cfg: DictConfig, summary: dict[str, Any]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    # A diverged run, or a metric logged as inf/NaN (reverse KL with no high-quality sample),
    # scores the worst value: Optuna ranks the trial last and the search goes on. (NaN
    # would stop it: hydra-optuna-sweeper 1.3 fails to record a NaN trial, hydra#2237.)
    value = summary["metrics"].get(name)
    not_finite = name in summary["metrics"] and value is None  # the summary's inf/NaN
    if summary["status"] == "diverged" or not_finite:
        return worst_value(name)
    if value is None and not summary["metrics"]:  # evaluation switched off: nothing to return
        log.warning("optimized_metric=%s: no metrics were logged; returning nothing", name)
        return None
    if value is None:
        raise UserError(
            f"optimized_metric={name!r} was not logged; logged: {list(summary['metrics'])}"
        )
    return value


def _one_line(err: BaseException) -> str:
    """The user-facing message of a config/input error, on one line."""
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        key = next((ln for ln in str(err).splitlines() if ln.startswith("full_key:")), "")
        where = f" (building {key.replace('full_key: ', '')})" if key else ""
        return f"{str(err.__cause__).splitlines()[0]}{where}"
    if isinstance(err, OmegaConfBaseException):
        msg = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        return f"config: {msg}" + (f" (set {key}=... on the command line)" if key else "")
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def unknown_choice(argv: Sequence[str]) -> str | None:
    """The one-line error for a ``group=option`` override naming no config file, or None.

    Hydra reports this too, over a dozen lines; checking first keeps it to one.
    """
    conf = importlib.resources.files("ganlab.conf")
    for arg in argv:
        group, sep, value = arg.partition("=")
        group = group.lstrip("+")
        plugin_group = group.startswith("hydra/")  # options also come from Hydra plugins
        if not sep or "(" in value or plugin_group or not conf.joinpath(group).is_dir():
            continue
        options = sorted(
            f.name[:-5] for f in conf.joinpath(group).iterdir() if f.name.endswith(".yaml")
        )
        for option in value.split(","):
            if option not in options and option != "null":
                return f"unknown {group} {option!r}; choose one of: {', '.join(options)}"
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    """Entry point of ``python -m ganlab``: train and return ``optimized_metric``."""
    try:
        summary = train(cfg)
        if summary["status"] == "interrupted":  # the checkpoint is saved; exit as a shell would
            sys.exit(128 + getattr(signal, summary.get("signal") or "SIGINT"))
        return _optimized(cfg, summary)
    except (UserError, OmegaConfBaseException) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr, flush=True)
        sys.exit(2)


def main() -> None:
    """``python -m ganlab`` / ``ganlab``: check group choices, then hand over to Hydra."""
    message = unknown_choice(sys.argv[1:])
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
