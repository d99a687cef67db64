"""Console progress bar counted in G steps, with the key figures."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, one tick per generator step, without the version number.

    Writing to a file or a pipe (a cluster log), it refreshes about 20 times a run
    instead of every ``refresh_rate`` steps, so the log stays readable.
    """

    def on_train_start(self, trainer, *args) -> None:
        super().on_train_start(trainer, *args)
        if not sys.stderr.isatty():
            self._refresh_rate = max(self._refresh_rate, trainer.num_training_batches // 20)

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description("train (G steps)")

    def get_metrics(self, trainer, module) -> dict:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics
