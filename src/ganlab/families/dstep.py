"""The record of one D update, as every family's D phase computes it (``Family.d_step``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from ganlab import diagnostics as diag


@dataclass
class DStep:
    """What one D update computed (``Family.d_step``).

    Args:
        loss: what the update backpropagates: the adversarial loss plus the due penalties.
        adversarial: the (scaled) adversarial loss alone, detached.
        penalty: the due penalties (each x its interval), detached; None when none is due.
        real_out, fake_out: D's raw outputs (float32), detached.
        accuracy: D's accuracy (None for a critic, ``AdversarialLoss.accuracy``).
        extra: further diagnostics of the update (the augmentation's: ADA's p and r_t).
    """

    loss: Tensor
    adversarial: Tensor
    penalty: Tensor | None
    real_out: Tensor
    fake_out: Tensor
    accuracy: Tensor | None
    extra: dict[str, Tensor] = field(default_factory=dict)

    def stats(self) -> dict[str, Tensor]:
        """The D phase's diagnostics: loss, mean outputs, accuracy, penalty."""
        stats = {
            diag.D_LOSS: self.adversarial,
            diag.D_REAL: self.real_out.mean(),
            diag.D_FAKE: self.fake_out.mean(),
        }
        if self.accuracy is not None:
            stats[diag.D_ACC] = self.accuracy
        if self.penalty is not None:
            stats[diag.PENALTY] = self.penalty
        return {**stats, **self.extra}
