"""A lazy regularizer (``interval`` > 1) is applied on every ``interval``-th D update, at
``interval`` x its weight, in every family: lazy regularization (Karras et al. 2020,
StyleGAN2, sec. 3.1). A spy regularizer records the coefficient with which each of its
penalties enters the loss that D's update backpropagates, and the G step it entered at."""

from __future__ import annotations

import pytest
import torch

from ganlab.losses import Regularizer
from ganlab.train import build, compose_config
from test_families import NO_METRICS, TINY, write_domains

WEIGHT, INTERVAL = 0.5, 4
SPY = [
    "+regularizers.spy._target_=test_lazy_regularizers.Spy",
    f"+regularizers.spy.weight={WEIGHT}",
    f"+regularizers.spy.interval={INTERVAL}",
]


class Spy(Regularizer):
    """Each penalty is ``weight`` x a fresh zero leaf: the leaf's gradient, recorded by a
    hook when D's loss is backpropagated, is the coefficient the penalty entered D's loss
    with; penalties differentiated only towards D's parameters (the unrolled GAN's
    look-ahead) are counted in ``calls`` but never reach the hook."""

    def __init__(self, weight: float = 1.0, interval: int = 1) -> None:
        super().__init__(weight, interval)
        self.calls = 0
        self.applied: list[tuple[int, float]] = []  # (G step, coefficient)
        self.clock = lambda: -1  # the G step (set by the test)

    def penalty(self, d, real, fake, generator=None):
        self.calls += 1
        leaf = torch.zeros((), device=real.device, requires_grad=True)
        step = self.clock()
        leaf.register_hook(lambda grad: self.applied.append((step, float(grad))))
        return self.weight * leaf


def trained_spy(tmp_path, *overrides: str) -> Spy:
    cfg = compose_config(["logger=csv", "trainer=cpu", "threads=1", *SPY, *overrides], tmp_path)
    trainer, module, datamodule = build(cfg)
    (spy,) = [r for r in module.family.regularizers if type(r).__name__ == "Spy"]
    spy.clock = lambda: module.g_step
    trainer.fit(module, datamodule=datamodule)
    assert module.g_step == 8
    return spy


DUE = INTERVAL * WEIGHT  # the lazy penalty's coefficient


@pytest.mark.parametrize(
    ("overrides", "applied"),
    [
        # n_critic = 2: D updates 0..15, due on 0, 4, 8, 12 (the first repeat of steps 0, 2, ...)
        (["steps=8", "n_critic=2", "eval_every=100"], [(0, DUE), (2, DUE), (4, DUE), (6, DUE)]),
        (["family=pix2pix", "data=edges", "data.base.image_size=16", "data.batch_size=4",
          "steps=8", "sample_every=100", *TINY, *NO_METRICS], [(0, DUE), (4, DUE)]),
    ],
    ids=["latent", "pix2pix"],
)  # fmt: skip
def test_lazy_penalty_is_applied_every_interval_at_interval_times_its_weight(
    tmp_path, overrides, applied
):
    assert trained_spy(tmp_path, *overrides).applied == applied


def test_lazy_penalty_in_cyclegan_acts_on_both_discriminators(tmp_path):
    spy = trained_spy(
        tmp_path / "r",
        "family=cyclegan",
        "data=unpaired_folder",
        f"data.path={write_domains(tmp_path / 'd')}",
        "data.image_size=16",
        "data.batch_size=2",
        "data.num_workers=0",
        "family.pool_size=3",
        "steps=8",
        "sample_every=100",
        *TINY,
        *NO_METRICS,
    )
    assert sorted(spy.applied) == [(0, DUE), (0, DUE), (4, DUE), (4, DUE)]  # D_A and D_B


def test_lazy_penalty_in_the_unrolled_gan_and_its_look_ahead(tmp_path):
    """D's own updates apply it on updates 0 and 4; the look-ahead of step s unrolls update
    s + 1, so it also computes the penalty at steps 3 and 7 (inside G's loss, never D's)."""
    spy = trained_spy(
        tmp_path, "family=unrolled", "family.unroll_steps=1", "steps=8", "eval_every=100"
    )
    assert spy.applied == [(0, DUE), (4, DUE)]
    assert spy.calls == 4


def test_lazy_r1_in_pix2pix_enters_d_loss_at_interval_times_its_weight(tmp_path):
    """The R1 penalty of ``+regularizers.r1.interval=4`` in Pix2Pix: on D update 0 its
    loss holds 4 x R1 on the (input, target) pairs; on update 1 it holds none."""
    from ganlab.families import StepContext
    from ganlab.losses import R1Penalty

    cfg = compose_config(
        ["logger=csv", "family=pix2pix", "data=edges", "data.base.image_size=16", *TINY,
         *NO_METRICS, "+regularizers.r1._target_=ganlab.losses.R1Penalty",
         "+regularizers.r1.weight=0.5", "+regularizers.r1.interval=4"],
        tmp_path,
    )  # fmt: skip
    _, module, datamodule = build(cfg)
    family, shapes = module.family, datamodule.data.spec.shapes
    d_phase = family.phases()[0]
    source, target = (torch.rand(4, *shapes[k]) * 2 - 1 for k in ("input", "target"))
    family.eval()  # no dropout in G, no batch statistics in D: the same D for both calls

    def d_loss(step: int) -> tuple[torch.Tensor, dict]:
        ctx = StepContext(step, torch.Generator().manual_seed(0))
        return family.phase_loss(d_phase, (source, target), ctx)

    d = lambda x: family.discriminator(torch.cat([source, x], dim=1))  # noqa: E731
    r1 = R1Penalty(weight=0.5).penalty(d, target, target)
    due, stats = d_loss(4)
    skipped, skipped_stats = d_loss(1)
    assert "penalty" not in skipped_stats and torch.equal(skipped, skipped_stats["d_loss"])
    torch.testing.assert_close(stats["penalty"], 4 * r1.detach())
    torch.testing.assert_close(due.detach(), stats["d_loss"] + 4 * r1.detach())
