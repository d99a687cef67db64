"""GANModule: phase isolation, step counting in G steps, EMA, argument checks."""

import csv
import functools

import lightning.pytorch as pl
import pytest
import torch
from torch.testing import assert_close

from ganlab.data.toy import ToyDataModule, ring
from ganlab.losses import NonSaturatingLoss, R1Penalty
from ganlab.module import GANModule
from ganlab.nets import MLP

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def make_module(n_critic: int = 1, **kwargs) -> GANModule:
    torch.manual_seed(0)
    args = dict(
        generator=MLP(2, 2, width=16, depth=2),
        discriminator=MLP(2, 1, width=16, depth=2),
        loss=NonSaturatingLoss(),
        optimizer_g=ADAM,
        optimizer_d=ADAM,
        latent_dim=2,
        n_critic=n_critic,
    )
    return GANModule(**{**args, **kwargs})


def fit(module: GANModule, steps: int, tmp_path, **trainer_kwargs) -> pl.Trainer:
    data = ToyDataModule(
        ring(), dim=2, batch_size=32, steps=steps, batches_per_step=module.n_critic
    )
    defaults = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer = pl.Trainer(**{**defaults, **trainer_kwargs})
    trainer.fit(module, datamodule=data)
    return trainer


def snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def grads(net: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def test_d_step_leaves_g_untouched_and_g_step_leaves_d_untouched(tmp_path):
    module = make_module(n_critic=2)
    checks = []
    d_step, g_step = module._d_step, module._g_step

    def checked_d_step(*args):
        before, grads_before = snapshot(module.generator), grads(module.generator)
        out = d_step(*args)
        checks.append(("G during D step", before, snapshot(module.generator)))
        for g0, g1 in zip(grads_before, grads(module.generator), strict=True):
            assert (g0 is None and g1 is None) or torch.equal(g0, g1), "G got gradient in D step"
        return out

    def checked_g_step(*args):
        before, grads_before = snapshot(module.discriminator), grads(module.discriminator)
        out = g_step(*args)
        checks.append(("D during G step", before, snapshot(module.discriminator)))
        for g0, g1 in zip(grads_before, grads(module.discriminator), strict=True):
            assert (g0 is None and g1 is None) or torch.equal(g0, g1), (
                "D accumulated gradient in the G step"
            )
        return out

    module._d_step, module._g_step = checked_d_step, checked_g_step
    g0 = snapshot(module.generator)
    fit(module, steps=3, tmp_path=tmp_path)
    assert len(checks) == 3 * 2 + 3
    for name, before, after in checks:
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True)), name
    # ... and each phase does update its own network
    assert not all(torch.equal(a, b) for a, b in zip(g0, snapshot(module.generator), strict=True))


def test_steps_are_generator_updates_whatever_n_critic(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    module = make_module(n_critic=5)
    logger = CSVLogger(tmp_path, name="", version="")
    trainer = fit(module, steps=12, tmp_path=tmp_path, logger=logger, log_every_n_steps=4)
    opt_g, opt_d = trainer.optimizers
    assert module.g_step == 12
    assert next(iter(opt_g.state.values()))["step"] == 12
    assert next(iter(opt_d.state.values()))["step"] == 60
    logger.save()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]  # logged in G steps, not optimizer steps


def test_lazy_regularizer_is_applied_every_interval_and_scaled(tmp_path):
    module = make_module(regularizers=[R1Penalty(weight=1.0, interval=4)])
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    full = R1Penalty(weight=1.0).penalty(module.discriminator, real, fake)
    assert_close(module._regularize(real, fake, d_update=8), 4 * full)
    assert module._regularize(real, fake, d_update=9) is None


def test_ema_update_formula():
    module = make_module(ema=0.9)
    with torch.no_grad():
        for p in module.generator.parameters():
            p.add_(1.0)
    # past the ramp-up: beta; at step t the half-life is capped at 0.05 (t + 1) steps
    for g_step, beta in ((1000, 0.9), (0, 0.5**20), (99, 0.5 ** (1 / 5))):
        module.g_step = g_step
        before = snapshot(module.generator_ema)
        module._update_ema()
        pairs = zip(
            before, module.generator.parameters(), module.generator_ema.parameters(), strict=True
        )
        for e0, p, e1 in pairs:
            assert_close(e1, beta * e0 + (1 - beta) * p.detach())


def test_generate_uses_ema_generator_with_a_fixed_z():
    module = make_module(ema=0.999)
    with torch.no_grad():
        for p in module.generator_ema.parameters():
            p.zero_()
    assert module.generate(10).abs().max() == 0  # samples come from the (zeroed) EMA copy
    plain = make_module()
    assert torch.equal(plain.generate(50), plain.generate(50))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_critic": 0}, "n_critic must be >= 1"),
        ({"latent_dist": "cauchy"}, "latent_dist must be one of"),
        ({"ema": 1.5}, "ema must be in"),
        (
            {"optimizer_g": functools.partial(torch.optim.Adam, lr=-1.0)},
            "optimizer_g: Invalid learning rate",
        ),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_module(**kwargs)


def test_network_shape_check():
    with pytest.raises(ValueError, match=r"MLP expects input \(B, 2\), got \(4, 3\)"):
        MLP(2, 1)(torch.zeros(4, 3))


def test_lr_decay_schedule_in_g_steps():
    from ganlab.callbacks.lr_decay import LRDecay

    linear = LRDecay(total=1000, start=0.5, final=0.0)
    assert [linear.factor(s) for s in (0, 500, 750, 1000, 2000)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    cosine = LRDecay(total=100, start=0.0, final=0.1, shape="cosine")
    assert_close(cosine.factor(50), 0.55)
    with pytest.raises(ValueError, match="shape must be one of"):
        LRDecay(total=10, shape="step")
