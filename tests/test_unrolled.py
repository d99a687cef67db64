"""The unrolled GAN (Metz et al. 2017): D's own rule applied functionally, D untouched by the
look-ahead, k = 0 is the latent GAN bit for bit, the second-order gradient against finite
differences, the one-line refusals, and exact resume."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch.testing import assert_close

from conftest import run_train
from ganlab.errors import UserError
from ganlab.families import StepContext, UnrolledGAN
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
from ganlab.nets import MLP
from ganlab.unroll import FunctionalOptimizer
from test_runner_identity import final_tensors

OPTIMIZERS = {
    "adam": functools.partial(torch.optim.Adam, lr=0.05, betas=(0.5, 0.9)),
    "adam_l2_amsgrad": functools.partial(torch.optim.Adam, lr=0.05, weight_decay=0.1, amsgrad=True),
    "adamw": functools.partial(torch.optim.AdamW, lr=0.05, weight_decay=0.1),
    "rmsprop": functools.partial(torch.optim.RMSprop, lr=0.01),
    "rmsprop_centered_momentum": functools.partial(
        torch.optim.RMSprop, lr=0.01, centered=True, momentum=0.9, weight_decay=0.01
    ),
    "sgd": functools.partial(torch.optim.SGD, lr=0.1),
    "sgd_nesterov": functools.partial(
        torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "sgd_dampening_maximize": functools.partial(
        torch.optim.SGD, lr=0.1, momentum=0.5, dampening=0.3, maximize=True
    ),
}


@pytest.fixture
def float64():
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


def family(k=3, through="full", loss=None, regs=(), norm="none", pack=1, width=8):
    """A tiny unrolled GAN on 2-D points: tanh MLPs (smooth, for finite differences)."""
    torch.manual_seed(0)
    fam = UnrolledGAN(
        generator=functools.partial(MLP, in_dim=2, out_dim=2, width=width, depth=1,
                                    activation="tanh"),
        discriminator=functools.partial(MLP, in_dim=2, out_dim=1, width=width, depth=2,
                                        activation="tanh", norm=norm),
        loss=loss or NonSaturatingLoss(),
        regularizers=list(regs),
        latent_dim=2,
        unroll_steps=k,
        through=through,
        pack=pack,
    )  # fmt: skip
    from ganlab.data.spec import DataSpec

    fam.setup(DataSpec("points", {"x": (2,)}))
    return fam


def real_batch(n=12, seed=3):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) * 0.5 + 1.0


def trained_d_optimizer(fam, make=OPTIMIZERS["adam"], updates=2):
    """D's optimizer after a few real D updates (so it has state), as the runner makes them."""
    opt = make(fam.discriminator.parameters())
    for step in range(updates):
        ctx = StepContext(step, torch.Generator().manual_seed(10 + step), optimizers={"d": opt})
        d_phase = fam.phases()[0]  # each phase carries its own loss
        loss, _ = fam.phase_loss(d_phase, (real_batch(seed=step), None), ctx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad()
    return opt


def g_loss(fam, opt, seed=7, real=None):
    ctx = StepContext(5, torch.Generator().manual_seed(seed), optimizers={"d": opt})
    g_phase = fam.phases()[1]
    return fam.phase_loss(g_phase, (real_batch() if real is None else real, None), ctx)[0]


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_functional_rule_equals_the_optimizers_own_steps(name):
    """Three updates applied out of place from a copy of the state equal the optimizer's own
    three in-place steps, bit for bit, and leave the optimizer and parameters as they were."""
    torch.manual_seed(0)
    params = {"w": torch.nn.Parameter(torch.randn(5, 3)), "b": torch.nn.Parameter(torch.randn(3))}
    opt = OPTIMIZERS[name](params.values())
    grads = [{k: torch.randn_like(p) for k, p in params.items()} for _ in range(5)]
    for g in grads[:2]:  # the optimizer's own history
        for k, p in params.items():
            p.grad = g[k].clone()
        opt.step()
    before = {k: p.detach().clone() for k, p in params.items()}
    state_before = copy.deepcopy(opt.state_dict())
    rule = FunctionalOptimizer(opt, params)
    unrolled = dict(params)
    for g in grads[2:]:
        unrolled = rule.step(unrolled, g)
    for k, p in params.items():  # untouched
        assert torch.equal(p, before[k])
    assert_close(opt.state_dict(), state_before, rtol=0, atol=0)
    for g in grads[2:]:  # the reference: the optimizer itself
        for k, p in params.items():
            p.grad = g[k].clone()
        opt.step()
    for k, p in params.items():
        assert torch.equal(unrolled[k], p.detach()), f"{name}: {k}"


def test_unsupported_optimizer_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError) as err:
        run_train(tmp_path, "family=unrolled", "trainer=smoke",
                  "optim.d._target_=torch.optim.Adagrad", "~optim.d.betas")  # fmt: skip
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "the unrolled GAN unrolls D with its own optimizer's rule, and optim.d is "
        "torch.optim.adagrad.Adagrad: use torch.optim.Adam|AdamW|RMSprop|SGD"
    )


@pytest.mark.parametrize(("key", "value", "message"), [
    ("unroll_steps", -1, "family.unroll_steps must be >= 0, got -1"),
    ("through", "half", "family.through must be one of none, full, got 'half'"),
])  # fmt: skip
def test_bad_family_values_are_named(key, value, message):
    with pytest.raises(ValueError, match=message):
        family(**{"k" if key == "unroll_steps" else key: value})


# --------------------------------------------------------------------------- D untouched


def test_one_unrolled_update_is_ds_own_next_update():
    """k = 1: the look-ahead's D is the D that D's optimizer makes from the same loss."""
    fam = family(k=1, through="none")
    opt = trained_d_optimizer(fam)
    real, fake = real_batch(), torch.randn(12, 2)
    ctx = StepContext(5, torch.Generator(), optimizers={"d": opt})
    unrolled = fam.unrolled_parameters(real, None, fake, None, ctx)
    d = fam.discriminator
    loss = fam.loss.d_loss(d(real), d(fake))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert_close(unrolled, dict(d.named_parameters()), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("through", ["none", "full"])
def test_unrolled_g_step_leaves_ds_parameters_state_and_buffers(through):
    """After the unrolled G phase (loss and backward) D's parameters, optimizer state and
    BatchNorm statistics are as before it; the latent GAN's G phase (k = 0) does move the
    statistics, so the comparison can fail."""
    fam = family(k=5, through=through, norm="batch")
    opt = trained_d_optimizer(fam)
    d = fam.discriminator
    params = {k: v.detach().clone() for k, v in d.named_parameters()}
    buffers = {k: v.clone() for k, v in d.named_buffers()}
    assert any("running_mean" in k for k in buffers)
    state = copy.deepcopy(opt.state_dict())
    d.requires_grad_(False)  # as the runner freezes D in the G phase
    plain = copy.deepcopy(fam)
    plain.unroll_steps = 0  # the latent GAN's G phase (no optimizer needed)
    loss = g_loss(fam, opt)
    loss.backward()
    assert_close(dict(d.named_parameters()), params, rtol=0, atol=0)
    assert all(p.grad is None for p in d.parameters())
    assert_close(opt.state_dict(), state, rtol=0, atol=0)
    assert_close(dict(d.named_buffers()), buffers, rtol=0, atol=0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fam.generator.parameters())
    plain_loss = g_loss(plain, None)
    assert not torch.equal(loss, plain_loss)  # the look-ahead changed G's loss
    moved = dict(plain.discriminator.named_buffers())
    assert not torch.equal(moved["net.1.running_mean"], buffers["net.1.running_mean"])


def test_k0_trains_exactly_as_the_latent_gan(tmp_path):
    """family=unrolled unroll_steps=0 runs the unrolled code path (functional call of D with
    its own parameters) and ends with the latent GAN's tensors, bit for bit."""
    common = ["steps=40", "threads=1", "model.discriminator.norm=batch", "eval_every=40"]
    plain = final_tensors(tmp_path / "plain", common)
    unrolled = final_tensors(tmp_path / "k0", ["family=unrolled", "family.unroll_steps=0", *common])
    for role, tensors in plain.items():
        for i, (a, b) in enumerate(zip(tensors, unrolled[role], strict=True)):
            assert torch.equal(a, b), f"{role} tensor {i}"
    moved = final_tensors(tmp_path / "k1", ["family=unrolled", "family.unroll_steps=1", *common])
    assert not torch.equal(moved["G"][0], plain["G"][0])  # the look-ahead changes training


# --------------------------------------------------------------------------- second order


def _fd_gradient(fam, opt, h=1e-6):
    """Central differences of the unrolled G loss in every parameter of G."""
    grads = []
    for p in fam.generator.parameters():
        flat = p.detach().view(-1)  # shares p's storage
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + h
            up = g_loss(fam, opt).item()
            flat[i] = old - h
            down = g_loss(fam, opt).item()
            flat[i] = old
            grads.append((up - down) / (2 * h))
    return torch.tensor(grads)


@pytest.mark.parametrize("make", ["adam", "rmsprop_centered_momentum", "sgd_nesterov"])
def test_second_order_gradient_matches_finite_differences(make, float64):
    """through=full: dL/dθ_G through 3 unrolled updates equals central differences of the
    unrolled G loss; through=none (first order) does not."""
    fam = family(k=3, through="full", width=4)
    opt = trained_d_optimizer(fam, OPTIMIZERS[make])
    fam.discriminator.requires_grad_(False)
    loss = g_loss(fam, opt)
    analytic = torch.autograd.grad(loss, list(fam.generator.parameters()))
    analytic = torch.cat([g.flatten() for g in analytic])
    numeric = _fd_gradient(fam, opt)
    assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)
    fam.through = "none"
    first = torch.autograd.grad(g_loss(fam, opt), list(fam.generator.parameters()))
    first = torch.cat([g.flatten() for g in first])
    assert (first - numeric).abs().max() > 100 * (analytic - numeric).abs().max() + 1e-6


@pytest.mark.parametrize(("loss", "zero_sum"), [(MinimaxLoss(), True), (WassersteinLoss(), True),
                                               (NonSaturatingLoss(), False)])  # fmt: skip
def test_g_minimises_the_games_value_at_the_unrolled_d(loss, zero_sum):
    """Second order, a zero-sum game's G loss is the value -d_loss at θ_D^k, real term
    included (it depends on G through the look-ahead; Metz et al. 2017, eq. 12, and the
    reference's ``minimize(-unrolled_loss)``); otherwise G's own loss at θ_D^k."""
    fam = family(k=2, through="full", loss=loss)
    opt = trained_d_optimizer(fam)
    real = real_batch()
    got = g_loss(fam, opt, seed=7, real=real)
    ctx = StepContext(5, torch.Generator().manual_seed(7), optimizers={"d": opt})
    fake = fam.g(fam.sample_z(len(real), ctx.generator))
    net = fam._functional(fam.unrolled_parameters(real, None, fake, None, ctx))
    expected = -loss.d_loss(net(real), net(fake)) if zero_sum else loss.g_loss(net(fake))
    assert_close(got, expected)


# --------------------------------------------------------------------------- with the rest


@pytest.mark.parametrize(("loss", "regs", "make", "pack"), [
    (WassersteinLoss(), [GradientPenalty(10.0)], "adam", 1),
    (WassersteinLoss(), [WeightClipping(0.05)], "rmsprop", 1),
    (HingeLoss(), [R1Penalty(1.0, interval=2)], "adam", 1),
    (LeastSquaresLoss(), [], "sgd_nesterov", 2),
    (NonSaturatingLoss(), [GradientPenalty(1.0)], "adam", 3),
])  # fmt: skip
def test_every_loss_and_regularizer_unrolls_second_order(loss, regs, make, pack):
    """Other losses, gradient penalties (a third-order graph), weight clipping (applied to
    the look-ahead) and packing: finite G gradients that differ from the first-order ones."""
    fam = family(k=2, through="full", loss=loss, regs=regs, pack=pack)
    opt = trained_d_optimizer(fam, OPTIMIZERS[make])
    fam.discriminator.requires_grad_(False)
    full = torch.autograd.grad(g_loss(fam, opt), list(fam.generator.parameters()))
    fam.through = "none"
    first = torch.autograd.grad(g_loss(fam, opt), list(fam.generator.parameters()))
    assert all(torch.isfinite(g).all() for g in full)
    assert any(not torch.allclose(a, b) for a, b in zip(full, first, strict=True))
    if any(isinstance(r, WeightClipping) for r in regs):
        real, fake = real_batch(), torch.randn(12, 2)
        ctx = StepContext(5, torch.Generator(), optimizers={"d": opt})
        unrolled = fam.unrolled_parameters(real, None, fake, None, ctx)
        assert max(p.abs().max() for p in unrolled.values()) <= 0.05


def test_resume_is_exact(tmp_path):
    run = ["family=unrolled", "family.unroll_steps=2", "model.discriminator.norm=batch",
           "steps=30", "eval_every=30", "ckpt_every=1000", "trainer=cpu", "threads=1"]  # fmt: skip
    run_train(tmp_path / "full", *run)
    interrupt = ["+callbacks.interrupt._target_=conftest.InterruptAt",
                 "+callbacks.interrupt.step=13"]  # fmt: skip
    first = run_train(tmp_path / "split", *run, *interrupt)
    assert first["status"] == "interrupted"
    assert run_train(tmp_path / "split", *run, "resume=auto")["steps"] == 30
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
            for d in ("full", "split"))  # fmt: skip
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
