"""Turns the per-step diagnostics into flags that say why a run is failing."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from ganlab.callbacks.summary import SummaryPart
from ganlab.loggers import log_now

log = logging.getLogger(__name__)

ADVICE = {
    "vanishing_g_grad": "G's gradient has vanished (D rejects fakes with confidence); "
    "use the non-saturating loss, a weaker D or a regularizer",
    "d_wins": "D classifies real and fake almost perfectly; lower D's lr, "
    "lower n_critic or add a gradient penalty / R1",
    "collapse": "sample diversity fell (mode collapse); try packing, R1, a lower lr or EMA",
}


class Health(SummaryPart, pl.Callback):
    """Flags a vanishing G gradient, a D that wins outright, and mode collapse.

    Each flag is logged as ``health/<flag>`` (0/1) every ``window`` steps and announced
    on the console when it turns on or off. The flags raised are kept in ``raised``
    (flag -> first G step) for the run summary.

    Args:
        window: G steps averaged before judging.
        vanishing_ratio: G's gradient norm has vanished when its window mean falls below
            this fraction of its largest window mean so far (or below ``vanishing_abs``).
        d_acc: window-mean D accuracy at or above which D wins outright.
        min_spread: sample std / real std below which the samples have collapsed.
        modes_drop: fraction of the best ``val/modes`` below which modes were lost.
        warmup: fraction of the run before samples are judged (G starts collapsed).
    """

    def __init__(
        self,
        window: int = 50,
        vanishing_ratio: float = 0.01,
        vanishing_abs: float = 1e-6,
        d_acc: float = 0.99,
        min_spread: float = 0.5,
        modes_drop: float = 0.75,
        warmup: float = 0.2,
    ) -> None:
        self.window = window
        self.vanishing_ratio, self.vanishing_abs = vanishing_ratio, vanishing_abs
        self.d_acc, self.min_spread, self.modes_drop = d_acc, min_spread, modes_drop
        self.warmup = warmup
        # per-step diagnostics of the current window, kept on the device until judged
        self._g_norms: list[Tensor] = []
        self._d_accs: list[Tensor] = []
        self._peak_g_norm = 0.0
        self._best_modes = 0.0
        self._last_eval = None
        self.active: dict[str, bool] = dict.fromkeys(ADVICE, False)
        self._shown: dict[str, bool] = dict.fromkeys(ADVICE, False)
        self.raised: dict[str, int] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if module.status == "diverged":
            return
        last = module.last
        self._g_norms.append(last["grad_norm/g"])
        if "d_acc" in last:
            self._d_accs.append(last["d_acc"])
        if module.g_step % self.window == 0 and module.check_finite():
            self._judge_gradients()
            self._report(trainer, module.g_step)
        spread = trainer.callback_metrics.get("val/spread")
        judge = module.g_step >= self.warmup * trainer.num_training_batches
        if spread is not None and spread is not self._last_eval and judge:
            self._last_eval = spread
            self._judge_samples(float(spread), trainer.callback_metrics.get("val/modes"))
            self._report(trainer, module.g_step)

    def _judge_gradients(self) -> None:
        """Judge the window's means (one host read of the window's values)."""
        full_window = len(self._d_accs) >= self.window
        values = torch.stack([torch.stack(v).double().mean() for v in (self._g_norms,
                              self._d_accs) if v]).tolist()  # fmt: skip
        self._g_norms, self._d_accs = [], []
        g_norm = values[0]
        self._peak_g_norm = max(self._peak_g_norm, g_norm)
        self.active["vanishing_g_grad"] = (
            g_norm < self.vanishing_abs or g_norm < self.vanishing_ratio * self._peak_g_norm
        )
        if full_window:
            self.active["d_wins"] = values[1] >= self.d_acc

    def _judge_samples(self, spread: float, modes) -> None:
        collapsed = spread < self.min_spread
        if modes is not None:
            modes = float(modes)
            collapsed |= modes < self.modes_drop * self._best_modes
            self._best_modes = max(self._best_modes, modes)
        self.active["collapse"] = collapsed

    def _report(self, trainer: pl.Trainer, step: int) -> None:
        for flag, on in self.active.items():
            if on == self._shown[flag]:
                continue
            self._shown[flag] = on  # announce a flag when it turns on, and when it clears
            if on:
                self.raised.setdefault(flag, step)
            if trainer.is_global_zero:
                if on:
                    log.warning("health: step %d: %s", step, ADVICE[flag])
                else:
                    log.info("health: step %d: %s cleared", step, flag)
        log_now(trainer, {f"health/{k}": float(v) for k, v in self.active.items()}, step)

    def summary(self, module: Any) -> dict[str, Any]:
        return {"health": dict(self.raised)}

    # -------------------------------------------------------------- state (exact resume)
    def state_dict(self) -> dict[str, Any]:
        return {
            "peak_g_norm": self._peak_g_norm,
            "best_modes": self._best_modes,
            "active": dict(self.active),
            "shown": dict(self._shown),
            "raised": dict(self.raised),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._peak_g_norm = state.get("peak_g_norm", 0.0)
        self._best_modes = state.get("best_modes", 0.0)
        self.active.update(state.get("active", {}))
        self._shown.update(state.get("shown", {}))
        self.raised.update(state.get("raised", {}))
