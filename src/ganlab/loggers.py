"""Logger factories: W&B that never prompts or hangs, and a CSV log in the run directory."""

from __future__ import annotations

import csv
import io
import logging
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from ganlab.errors import one_line

log = logging.getLogger(__name__)
WANDB_MODES = ("offline", "online", "disabled")


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = os.path.expanduser("~/.netrc")
    return os.path.exists(netrc) and "api.wandb.ai" in open(netrc).read()


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds (name
    lookup included, which a socket timeout does not bound: it runs in a thread)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def wandb_logger(
    save_dir: str,
    mode: str = "offline",
    project: str = "ganlab",
    entity: str | None = None,
    group: str | None = None,
    name: str | None = None,
    tags: Sequence[str] = (),
    id: str | None = None,
) -> WandbLogger:
    """A ``WandbLogger`` writing under ``save_dir/wandb``.

    ``mode`` is ``offline`` (default: run files kept for ``wandb sync``), ``online`` or
    ``disabled``. Online without an API key falls back to offline with a warning
    instead of prompting for one; so does online without network (the W&B server not
    reachable within seconds), instead of waiting a minute and failing.
    """
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r} is not a W&B mode; use one of {WANDB_MODES}")
    if mode == "online" and not _has_wandb_key():
        log.warning(
            "W&B online mode needs an API key (wandb login or WANDB_API_KEY); logging offline"
        )
        mode = "offline"
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    if mode == "online" and not _reachable(url):
        log.warning(
            "W&B server %s is not reachable (no network?); logging offline: "
            "`wandb sync <run dir>/wandb/offline-run-*` later",
            url,
        )
        mode = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    os.makedirs(save_dir, exist_ok=True)
    return FallbackWandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        group=group,
        name=name or None,
        tags=[t[:64] for t in tags],  # W&B rejects tags over 64 characters
        id=id,
        mode=mode,
        settings={"console": "off", "init_timeout": 60},
    )


class FallbackWandbLogger(WandbLogger):
    """A ``WandbLogger`` whose online run, if W&B fails to start it (the network dropped,
    the server refused), starts offline instead, with a warning: the run goes on."""

    @property
    def experiment(self):  # noqa: ANN201 (Lightning's type)
        try:
            return super().experiment
        except Exception as err:  # wandb raises its own types (CommError, UsageError, ...)
            if self._wandb_init.get("mode") != "online":
                raise
            log.warning("W&B could not start online (%s); logging offline", one_line(err))
            self._wandb_init["mode"] = "offline"
            self._experiment = None
            return super().experiment


class RunCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` writing ``<run dir>/metrics.csv``, whose history travels
    in checkpoints: a resumed run restores the rows up to its checkpoint, so logged steps
    continue without a gap or a repeat."""

    def __init__(self, save_dir: str) -> None:
        super().__init__(save_dir=save_dir, name="", version="")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        # Lightning flushes when (step + 1) % n == 0, which steps counted in tens never
        # meet: flush when step % n == 0, so metrics.csv grows while the run goes on
        if step is not None and step % self._flush_logs_every_n_steps == 0:
            self.save()

    def history(self) -> str:
        """The CSV text logged so far (rank 0 keeps the log; other ranks have none)."""
        if rank_zero_only.rank != 0:
            return ""
        self.save()
        path = self.experiment.metrics_file_path
        return open(path).read() if os.path.isfile(path) else ""

    def restore(self, text: str) -> None:
        """Replace the log by ``text`` (from a checkpoint) and append after it."""
        if rank_zero_only.rank != 0:
            return
        writer = self.experiment
        writer.metrics = []
        with open(writer.metrics_file_path, "w") as f:
            f.write(text)
        writer.metrics_keys = next(csv.reader(io.StringIO(text)), [])


def csv_logger(save_dir: str) -> RunCSVLogger:
    """The CSV log of a run: ``save_dir/metrics.csv`` (and ``hparams.yaml``)."""
    return RunCSVLogger(save_dir)


def log_now(
    trainer: pl.Trainer, metrics: dict[str, float], step: int, prog_bar: bool = False
) -> None:
    """Write ``metrics`` to every logger at G step ``step`` and expose them to the trainer
    (``callback_metrics``, and the progress bar with ``prog_bar``).

    ganlab logs on its own schedules in G steps, so it writes directly rather than
    through ``self.log``, whose bookkeeping costs about 1 ms per key on a CPU.
    """
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
    tensors = {k: torch.tensor(v) for k, v in metrics.items()}
    trainer.callback_metrics.update(tensors)
    if prog_bar:
        trainer.progress_bar_metrics.update(metrics)


def log_images(trainer: pl.Trainer, files: dict[str, Path], step: int) -> None:
    """Send image files (W&B key -> saved PNG) to the run's W&B logger, if it has one (the
    files themselves are already in the run directory for the CSV-only user and the report)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            for key, path in files.items():
                logger.log_image(key, [str(path)], step=step)
