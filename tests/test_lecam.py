"""LeCam regularization (Tseng et al. 2021, eq. 3): known values, the anchors as an EMA of D's
mean outputs, G untouched by a D step with it, its anchors in the checkpoint (exact resume)
and its penalty in the diagnostics."""

import csv

import pytest
import torch
from torch.testing import assert_close

from conftest import resumed_equals_uninterrupted
from ganlab.families.base import StepContext
from ganlab.losses import LeCam
from test_module import fit, make_module, snapshot


def test_lecam_known_values():
    reg = LeCam(weight=0.5, decay=0.9)
    real_out, fake_out = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -3.0])
    reg.observe(real_out, fake_out)
    # zero-debiased: after one update the anchors are the batch means
    assert_close(reg.anchors, (torch.tensor(2.0), torch.tensor(-2.0)))
    # E(D(x) - α_F)² = (3² + 5²) / 2 = 17; E(D(G(z)) - α_R)² = (3² + 5²) / 2 = 17
    assert_close(reg.output_penalty(real_out, fake_out), torch.tensor(0.5 * 34.0))
    # at the anchors themselves (all real outputs at α_F, all fakes at α_R) it is zero
    assert_close(
        reg.output_penalty(torch.full((3,), -2.0), torch.full((3,), 2.0)), torch.tensor(0.0)
    )


def test_lecam_anchors_are_a_debiased_moving_average():
    decay = 0.9
    reg = LeCam(decay=decay)
    means = [(2.0, -1.0), (4.0, 0.5), (-1.0, 3.0), (0.0, 0.0)]
    for t, (r, f) in enumerate(means, start=1):
        reg.observe(torch.tensor([r - 1, r + 1]), torch.tensor([f, f]))
        # Σ_i (1 - β) β^(t - i) m_i / (1 - β^t)
        weights = [(1 - decay) * decay ** (t - i) for i in range(1, t + 1)]
        expected = [
            sum(w * m[k] for w, m in zip(weights, means[:t], strict=True)) / (1 - decay**t)
            for k in (0, 1)
        ]
        assert_close(torch.stack(reg.anchors), torch.tensor(expected))
    assert int(reg.updates) == len(means)
    assert set(reg.state_dict()) == {"ema_real", "ema_fake", "updates"}  # checkpointed


def test_lecam_penalty_is_differentiable_only_through_the_outputs():
    reg = LeCam(weight=1.0)
    reg.observe(torch.tensor([1.0]), torch.tensor([-1.0]))
    real_out = torch.tensor([0.0, 2.0], requires_grad=True)
    reg.output_penalty(real_out, torch.tensor([0.0])).backward()
    # d/dr mean((r - α_F)²) = 2 (r - α_F) / n, α_F = -1
    assert_close(real_out.grad, torch.tensor([1.0, 3.0]))


def test_lecam_bad_decay():
    with pytest.raises(ValueError, match="decay must be in"):
        LeCam(decay=1.0)


def test_d_step_with_lecam_leaves_g_untouched_and_updates_the_anchors():
    module = make_module(regularizers=[LeCam(weight=1.0)])
    family = module.family
    (lecam,) = family.regularizers
    g_before = snapshot(family.generator)
    real = torch.randn(32, 2)
    ctx = StepContext(0, torch.Generator().manual_seed(0))
    ctx.phase = family.phases()[0]
    loss, stats = family.phase_loss(ctx.phase, (real, None), ctx)
    loss.backward()
    assert all(p.grad is None for p in family.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g_before, snapshot(family.generator), strict=True))
    assert int(lecam.updates) == 1
    assert_close(torch.stack(lecam.anchors), torch.stack([stats["d_real"], stats["d_fake"]]))
    assert stats["penalty"] > 0  # the logged diagnostic: LeCam's penalty
    fit(module, steps=3, tmp_path=None)  # and through the runner: one observation per D update
    assert int(lecam.updates) == 1 + 3


RUN = ["+regularizers=lecam", "regularizers.lecam.weight=1.0", "steps=24", "log_every=4"]
RUN += ["eval_every=1000", "ckpt_every=1000", "n_critic=2", "trainer=cpu", "threads=1"]


def test_run_with_lecam_resumes_exactly_and_logs_its_penalty(tmp_path):
    a = resumed_equals_uninterrupted(tmp_path, RUN, at=11)
    assert {"family.regularizers.0.ema_real", "family.regularizers.0.updates"} <= a.keys()
    assert int(a["family.regularizers.0.updates"]) == 24 * 2  # one per D update
    full = tmp_path / "full"
    rows = list(csv.DictReader(open(full / "metrics.csv")))
    penalties = [float(r["train/penalty"]) for r in rows if r.get("train/penalty")]
    assert len(penalties) == 24 // 4 and all(p > 0 for p in penalties)


def test_unrolled_look_ahead_uses_the_anchors_without_moving_them():
    """The unrolled GAN's look-ahead D updates are hypothetical: LeCam's anchors (like D's
    BatchNorm statistics) stay as D's real updates left them, and its penalty, at those
    anchors, does enter the look-ahead (G's loss differs from the same GAN without it)."""
    from test_unrolled import family, g_loss, trained_d_optimizer

    fam = family(k=3, through="none", regs=[LeCam(weight=1.0)])
    opt = trained_d_optimizer(fam)
    (lecam,) = fam.regularizers
    state = {k: v.clone() for k, v in lecam.state_dict().items()}
    assert int(state["updates"]) == 2  # the two real D updates
    loss = g_loss(fam, opt)
    assert_close(lecam.state_dict(), state, rtol=0, atol=0)
    plain = family(k=3, through="none")
    assert not torch.equal(loss, g_loss(plain, trained_d_optimizer(plain)))


def test_cyclegan_refuses_lecam_in_one_line():
    """CycleGAN's two Ds would share one pair of anchors: refused before any net is built."""
    from ganlab.data.spec import DataSpec
    from ganlab.errors import UserError
    from ganlab.families.cyclegan import CycleGAN
    from ganlab.losses import LeastSquaresLoss

    fam = CycleGAN(None, None, LeastSquaresLoss(), regularizers=[LeCam()])
    with pytest.raises(UserError, match="cyclegan trains two Ds, and LeCam keeps state") as err:
        fam.setup(DataSpec("domains", {"a": (1, 16, 16), "b": (1, 16, 16)}))
    assert "\n" not in str(err.value)
