"""Turns the per-step diagnostics into flags that say why a run is failing."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from ganlab import diagnostics as diag
from ganlab.callbacks.summary import SummaryPart
from ganlab.loggers import log_now

log = logging.getLogger(__name__)

FLAGS = ("vanishing_g_grad", "d_wins", "collapse", "oscillation")
ADVICE = {
    "vanishing_g_grad": "G's gradient has vanished while D rejects its samples with confidence",
    "d_wins": "D classifies real and fake almost perfectly; lower D's lr, "
    "lower n_critic or add a gradient penalty / R1",
    "collapse": "sample diversity fell (mode collapse); try packing, R1, a lower lr or EMA",
    "oscillation": "G and D circle each other instead of settling (D's margin swings in sign); "
    "add R1 or a gradient penalty, lower the lrs or Adam's beta1",
}
#: the cure of a vanished G gradient, by whether G's loss saturates (``loss.saturating``)
VANISHING_FIX = {
    True: "use the non-saturating loss, a weaker D or a regularizer",
    False: "weaken D (a lower lr or n_critic) or add R1 / a gradient penalty",
}


class Health(SummaryPart, pl.Callback):
    """Flags a vanishing G gradient, a D that wins outright, mode collapse and oscillation.

    Each flag is logged as ``health/<flag>`` (0/1) every ``window`` steps and announced on
    the console when it turns on or off. The run summary says which flags hold at the end
    (``health``: flag -> the step it turned on) and when each was on (``health_history``:
    flag -> [[on, off], ...], off null while it holds).

    Gradient flags are judged on window means and change only after ``patience`` windows
    in a row agree, so a value hovering at a threshold does not flap. The thresholds were
    set from healthy and failing runs of each loss on toy data, digits and conditional
    digits (README, "Diagnostics").

    Args:
        window: G steps averaged before judging.
        vanishing_ratio: G's gradient norm has vanished when its window mean falls below
            this fraction of its largest window mean so far (or below ``vanishing_abs``)
            while D is confident (``d_confident``; always, for critics without accuracy).
        d_confident: window-mean D accuracy from which D rejects G's samples confidently.
        d_acc: D accuracy at or above which D wins outright, averaged over ``d_span``
            windows (``experiment=dcgan_digits``, which learns well, has stretches of 300
            steps at accuracy 1.0 near its end: a G with the non-saturating loss still
            learns from a D that classifies perfectly).
        d_span: windows averaged for ``d_acc``.
        min_spread: ``val/spread`` (the samples' spread / the data's: toy std, or image
            feature covariance) below which the samples have collapsed.
        modes_drop: fraction of the best ``val/modes`` below which modes were lost (and at
            least ``min_lost`` of them: early in a run, 2 modes found then 1 is noise).
        warmup: fraction of the run before samples are judged (G starts collapsed).
        patience: windows in a row that turn a gradient flag on, or off.
        osc_span: windows over which D's margin (its mean output on real minus on fake
            data, a window mean each) is watched for oscillation.
        osc_flips: sign changes of the margin within ``osc_span`` windows from which G and
            D circle each other (Mescheder et al. 2018's Dirac-GAN: the margin swings
            from D ahead to G ahead and back) ...
        osc_swing: ... with the margin's window means spanning at least this much (in D's
            output units: logits for the GAN losses); at an equilibrium the margin hovers
            near 0 and also changes sign, by little.
    """

    def __init__(
        self,
        window: int = 50,
        vanishing_ratio: float = 0.01,
        vanishing_abs: float = 1e-6,
        d_confident: float = 0.9,
        d_acc: float = 0.99,
        d_span: int = 10,
        min_spread: float = 0.5,
        modes_drop: float = 0.75,
        min_lost: int = 2,
        warmup: float = 0.2,
        patience: int = 2,
        osc_span: int = 8,
        osc_flips: int = 3,
        osc_swing: float = 1.0,
    ) -> None:
        if window < 1 or patience < 1:
            raise ValueError(f"Health: window and patience must be >= 1, got {window}, {patience}")
        self.window, self.patience = window, patience
        self.vanishing_ratio, self.vanishing_abs = vanishing_ratio, vanishing_abs
        self.d_confident, self.d_acc, self.d_span = d_confident, d_acc, d_span
        self.min_spread, self.modes_drop, self.warmup = min_spread, modes_drop, warmup
        self.min_lost = min_lost
        self.osc_span, self.osc_flips, self.osc_swing = osc_span, osc_flips, osc_swing
        # per-step diagnostics of the current window, kept on the device until judged
        self._g_norms: list[Tensor] = []
        self._d_accs: list[Tensor] = []
        self._margins: list[Tensor] = []
        self._margin_means: list[float] = []  # the last osc_span windows' mean margin
        self._peak_g_norm = 0.0
        self._d_means: list[float] = []  # the last d_span windows' mean D accuracy
        self._best_modes = 0.0
        self._last_eval = None
        self._saturating = False
        self.active: dict[str, bool] = dict.fromkeys(FLAGS, False)
        self._streak: dict[str, int] = dict.fromkeys(FLAGS, 0)
        self.periods: dict[str, list[list[int | None]]] = {}

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        self._saturating = module.family.loss.saturating

    def advice(self, flag: str) -> str:
        if flag == "vanishing_g_grad":
            return f"{ADVICE[flag]}; {VANISHING_FIX[self._saturating]}"
        return ADVICE[flag]

    # -------------------------------------------------------------- judging
    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        if module.status == "diverged":
            return
        last = module.last
        self._g_norms.append(last[diag.GRAD_NORM_G])
        if diag.D_ACC in last:
            self._d_accs.append(last[diag.D_ACC])
        if diag.D_REAL in last and diag.D_FAKE in last:
            self._margins.append(last[diag.D_REAL] - last[diag.D_FAKE])
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
        kept = [v for v in (self._g_norms, self._d_accs, self._margins) if v]
        values = torch.stack([torch.stack(v).double().mean() for v in kept]).tolist()
        g_norm = values[0]
        d_acc = values[1] if self._d_accs else None
        margin = values[-1] if self._margins else None
        self._g_norms, self._d_accs, self._margins = [], [], []
        self._peak_g_norm = max(self._peak_g_norm, g_norm)
        small = g_norm < self.vanishing_abs or g_norm < self.vanishing_ratio * self._peak_g_norm
        confident = d_acc is None or d_acc >= self.d_confident
        self._vote("vanishing_g_grad", small and confident)
        if full_window and d_acc is not None:
            self._d_means = [*self._d_means, d_acc][-self.d_span :]
            if len(self._d_means) == self.d_span:
                self._vote("d_wins", sum(self._d_means) / self.d_span >= self.d_acc)
        if margin is not None:
            self._margin_means = [*self._margin_means, margin][-self.osc_span :]
            if len(self._margin_means) == self.osc_span:
                self._vote("oscillation", self._oscillating(self._margin_means))

    def _oscillating(self, means: list[float]) -> bool:
        flips = sum((a > 0) != (b > 0) for a, b in itertools.pairwise(means))
        return flips >= self.osc_flips and max(means) - min(means) >= self.osc_swing

    def _vote(self, flag: str, on: bool) -> None:
        """Flip ``flag`` once ``patience`` judgements in a row disagree with it."""
        self._streak[flag] = self._streak[flag] + 1 if on != self.active[flag] else 0
        if self._streak[flag] >= self.patience:
            self.active[flag], self._streak[flag] = on, 0

    def _judge_samples(self, spread: float, modes: Any) -> None:
        collapsed = spread < self.min_spread
        if modes is not None:
            modes = float(modes)
            lost = self._best_modes - modes
            collapsed |= modes < self.modes_drop * self._best_modes and lost >= self.min_lost
            self._best_modes = max(self._best_modes, modes)
        self.active["collapse"] = collapsed

    def _report(self, trainer: pl.Trainer, step: int) -> None:
        for flag, on in self.active.items():
            periods = self.periods.setdefault(flag, []) if on else self.periods.get(flag, [])
            was_on = bool(periods) and periods[-1][1] is None
            if on == was_on:
                continue
            if on:  # announce a flag when it turns on, and when it clears
                periods.append([step, None])
            else:
                periods[-1][1] = step
            if trainer.is_global_zero:
                if on:
                    log.warning("health: step %d: %s", step, self.advice(flag))
                else:
                    log.info("health: step %d: %s cleared", step, flag)
        log_now(trainer, {f"health/{k}": float(v) for k, v in self.active.items()}, step)

    # -------------------------------------------------------------- summary
    def summary(self, module: Any) -> dict[str, Any]:
        """``health``: the flags that hold at the end, with the step each turned on;
        ``health_history``: every flag raised, with its periods [on, off]."""
        holding = {f: p[-1][0] for f, p in self.periods.items() if p and p[-1][1] is None}
        history = {f: [list(x) for x in p] for f, p in self.periods.items() if p}
        return {"health": holding, "health_history": history}

    # -------------------------------------------------------------- state (exact resume)
    def state_dict(self) -> dict[str, Any]:
        return {
            "peak_g_norm": self._peak_g_norm,
            "d_means": list(self._d_means),
            "margin_means": list(self._margin_means),
            "best_modes": self._best_modes,
            "active": dict(self.active),
            "streak": dict(self._streak),
            "periods": {f: [list(x) for x in p] for f, p in self.periods.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._peak_g_norm = state.get("peak_g_norm", 0.0)
        self._d_means = list(state.get("d_means", []))
        self._margin_means = list(state.get("margin_means", []))
        self._best_modes = state.get("best_modes", 0.0)
        self.active.update(state.get("active", {}))
        self._streak.update(state.get("streak", {}))
        self.periods = {f: [list(x) for x in p] for f, p in state.get("periods", {}).items()}
        for flag, step in state.get("raised", {}).items():  # a checkpoint of an older ganlab
            if flag not in self.periods:
                self.periods[flag] = [[step, None if self.active.get(flag) else step]]
