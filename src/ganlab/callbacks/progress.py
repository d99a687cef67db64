"""Console progress bar counted in G steps, with the key figures."""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class GANProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, one tick per generator step, without the version number."""

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description("train (G steps)")

    def get_metrics(self, trainer, module) -> dict:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics
