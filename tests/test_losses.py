"""Known values and gradient signs of every loss; invariants of the regularizers."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganlab.losses import (
    GradientPenalty,
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    R1Penalty,
    WassersteinLoss,
    WeightClipping,
)

ALL_LOSSES = [MinimaxLoss, NonSaturatingLoss, WassersteinLoss, HingeLoss, LeastSquaresLoss]
LOG2 = torch.tensor(math.log(2.0))


def test_nonsaturating_known_values():
    loss = NonSaturatingLoss()
    zero = torch.zeros(4)
    assert_close(loss.g_loss(zero), LOG2)  # -log σ(0) = log 2
    assert_close(loss.d_loss(zero, zero), 2 * LOG2)


def test_minimax_known_values_and_saturation():
    loss = MinimaxLoss()
    assert_close(loss.g_loss(torch.zeros(3)), -LOG2)  # log(1 - σ(0)) = -log 2
    # D rejects the fakes confidently: the minimax G gradient vanishes, the NS one does not
    fake = torch.full((8,), -10.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(MinimaxLoss().g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(NonSaturatingLoss().g_loss(fake), fake)
    assert g_mm.abs().max() < 1e-5
    assert g_ns.abs().min() > 0.1


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for loss in (MinimaxLoss(), NonSaturatingLoss()):
        assert torch.isfinite(loss.d_loss(big, big)) and torch.isfinite(loss.g_loss(big))


def test_hinge_known_values():
    loss = HingeLoss()
    assert_close(loss.d_loss(torch.ones(5), -torch.ones(5)), torch.tensor(0.0))
    assert_close(loss.d_loss(torch.zeros(5), torch.zeros(5)), torch.tensor(2.0))
    assert_close(loss.g_loss(torch.tensor([2.0, 4.0])), torch.tensor(-3.0))


def test_wasserstein_and_lsgan_known_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert_close(WassersteinLoss().d_loss(real, fake), torch.tensor(-0.5 - 2.0))
    assert_close(WassersteinLoss().g_loss(fake), torch.tensor(0.5))
    ls = LeastSquaresLoss()
    assert_close(ls.d_loss(torch.ones(3), torch.zeros(3)), torch.tensor(0.0))
    assert_close(ls.g_loss(torch.ones(3)), torch.tensor(0.0))
    assert_close(ls.g_loss(torch.zeros(3)), torch.tensor(0.5))


@pytest.mark.parametrize("loss_cls", ALL_LOSSES)
def test_gradient_signs(loss_cls):
    """G pushes D's output on fakes up; D pushes real up and fake down."""
    loss = loss_cls()
    # below 1 for LSGAN (its target), and inside hinge's margin
    fake = torch.linspace(-0.9, 0.9, 7, requires_grad=True)
    real = torch.linspace(-0.9, 0.9, 7, requires_grad=True)
    (d_fake_g,) = torch.autograd.grad(loss.g_loss(fake), fake)
    assert (d_fake_g < 0).all(), d_fake_g
    # fakes above LSGAN's fake target 0, inside hinge's margin
    fake = torch.linspace(0.1, 0.9, 7, requires_grad=True)
    d_real, d_fake = torch.autograd.grad(loss.d_loss(real, fake), (real, fake))
    assert (d_real < 0).all() and (d_fake > 0).all()


def test_accuracy():
    loss = NonSaturatingLoss()
    acc = loss.accuracy(torch.tensor([1.0, -1.0]), torch.tensor([-1.0, -2.0]))
    assert_close(acc, torch.tensor(0.75))
    assert WassersteinLoss().accuracy(torch.ones(2), torch.zeros(2)) is None
    assert_close(LeastSquaresLoss().accuracy(torch.ones(2), torch.zeros(2)), torch.tensor(1.0))


def _linear_critic(w: torch.Tensor) -> nn.Module:
    critic = nn.Linear(w.numel(), 1, bias=True)
    with torch.no_grad():
        critic.weight.copy_(w.view(1, -1))
    return critic


def test_gradient_penalty_of_1_lipschitz_linear_critic_is_zero():
    w = torch.tensor([0.6, 0.8])  # ‖w‖ = 1
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    penalty = GradientPenalty(weight=10.0).penalty(_linear_critic(w), real, fake)
    assert_close(penalty, torch.tensor(0.0), atol=1e-6, rtol=0)


def test_gradient_penalty_value_and_gradient():
    w = torch.tensor([1.2, 1.6])  # ‖w‖ = 2 -> λ (2 - 1)^2
    critic = _linear_critic(w)
    penalty = GradientPenalty(weight=10.0).penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    assert_close(penalty, torch.tensor(10.0))
    penalty.backward()  # double backward reaches D's weights: shrinking ‖w‖ lowers it
    assert_close(critic.weight.grad.view(-1), 10.0 * 2 * (2 - 1) * w / 2)


def test_r1_penalty_value():
    w = torch.tensor([3.0, 4.0])  # ‖w‖² = 25 -> γ/2 · 25
    penalty = R1Penalty(weight=0.2).penalty(_linear_critic(w), torch.randn(8, 2), torch.randn(8, 2))
    assert_close(penalty, torch.tensor(2.5))


def test_weight_clipping_clamps_every_parameter():
    d = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(100)
    WeightClipping(0.01).after_d_step(d)
    assert all(p.abs().max() <= 0.01 for p in d.parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda: R1Penalty(interval=0),
        lambda: GradientPenalty(weight=-1.0),
        lambda: WeightClipping(0),
    ],
)
def test_regularizer_bad_arguments(make):
    with pytest.raises(ValueError, match="must be"):
        make()
