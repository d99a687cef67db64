"""GANModule, the runner of a family's phases: phase isolation, step counting in G steps,
EMA, divergence, argument checks."""

import csv
import functools

import lightning.pytorch as pl
import pytest
import torch
from torch.testing import assert_close

from ganlab.data.lightning import LightningData
from ganlab.data.toy import ToyDataModule, ring
from ganlab.families import LatentGAN
from ganlab.losses import NonSaturatingLoss, R1Penalty
from ganlab.module import GANModule
from ganlab.nets import MLP

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def make_family(n_critic: int = 1, **kwargs) -> LatentGAN:
    torch.manual_seed(0)
    args = dict(
        generator=functools.partial(MLP, 2, 2, width=16, depth=2),
        discriminator=functools.partial(MLP, 2, 1, width=16, depth=2),
        loss=NonSaturatingLoss(),
        latent_dim=2,
        n_critic=n_critic,
    )
    family = LatentGAN(**{**args, **kwargs})
    family.setup(ring_data().spec)
    return family


def ring_data(steps: int = 1, n_critic: int = 1) -> ToyDataModule:
    return ToyDataModule(ring(), dim=2, batch_size=32).serve(steps, n_critic)


def make_module(n_critic: int = 1, optimizer_g=ADAM, optimizer_d=ADAM, **kwargs) -> GANModule:
    module_args = {
        k: kwargs.pop(k) for k in ("ema", "seed", "ema_rampup", "compile") if k in kwargs
    }
    family = make_family(n_critic, **kwargs)
    return GANModule(family, {"g": optimizer_g, "d": optimizer_d}, **module_args)


def fit(module: GANModule, steps: int, tmp_path, **trainer_kwargs) -> pl.Trainer:
    data = ring_data(steps, module.family.n_critic)
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
    trainer.fit(module, datamodule=LightningData(data))
    return trainer


def snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def grads(net: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def test_each_phase_changes_only_its_own_nets(tmp_path):
    """Per-phase isolation: a D update leaves G's parameters (and gradients) bit-identical,
    and a G update leaves D's; each phase does update its own nets."""
    module = make_module(n_critic=2)
    family = module.family
    nets = {"d": family.discriminator, "g": family.generator}
    checks = []
    update = module._update

    def checked_update(phase, item, opt, ctx):
        other = nets["g" if phase.optimizer == "d" else "d"]
        own_before, before, grads_before = (
            snapshot(nets[phase.optimizer]),
            snapshot(other),
            grads(other),
        )
        out = update(phase, item, opt, ctx)
        checks.append((phase.name, before, snapshot(other)))
        for g0, g1 in zip(grads_before, grads(other), strict=True):
            assert (g0 is None and g1 is None) or torch.equal(g0, g1), (
                f"{phase.name}: gradient leak"
            )
        changed = [
            not torch.equal(a, b)
            for a, b in zip(own_before, snapshot(nets[phase.optimizer]), strict=True)
        ]
        assert any(changed), f"phase {phase.name} did not update its own nets"
        return out

    module._update = checked_update
    fit(module, steps=3, tmp_path=tmp_path)
    assert [name for name, _, _ in checks] == ["d", "d", "g"] * 3
    for name, before, after in checks:
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True)), name


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
    family = make_family(regularizers=[R1Penalty(weight=1.0, interval=4)])
    real, fake, gen = torch.randn(8, 2), torch.randn(8, 2), torch.Generator()
    full = R1Penalty(weight=1.0).penalty(family.discriminator, real, fake)
    assert_close(family._regularize(real, fake, 8, None, gen), 4 * full)
    assert family._regularize(real, fake, 9, None, gen) is None


def test_ema_update_formula():
    module = make_module(ema=0.9)
    g, g_ema = module.family.generator, module.family.ema["generator"]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    # past the ramp-up: beta; at step t the half-life is capped at 0.05 (t + 1) steps
    for g_step, beta in ((1000, 0.9), (0, 0.5**20), (99, 0.5 ** (1 / 5))):
        module.g_step = g_step
        before = snapshot(g_ema)
        module._update_ema()
        pairs = zip(before, g.parameters(), g_ema.parameters(), strict=True)
        for e0, p, e1 in pairs:
            assert_close(e1, beta * e0 + (1 - beta) * p.detach())


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="needs CUDA"))],
)  # fmt: skip
def test_the_step_seeds_torchs_stream_as_manual_seed_does(device):
    """Each step reseeds torch's own stream (dropout) without ``torch.manual_seed``'s cost:
    the draws on the training device are the same."""
    module = make_module().to(device)
    for seed in (0, 1234):
        module._seed_torch(seed)
        got = torch.rand(5, device=device)
        torch.manual_seed(seed)
        assert torch.equal(got, torch.rand(5, device=device))


def test_generate_uses_ema_generator_with_a_fixed_z():
    module = make_module(ema=0.999)
    with torch.no_grad():
        for p in module.family.ema["generator"].parameters():
            p.zero_()
    assert module.family.generate(10).abs().max() == 0  # samples come from the zeroed EMA
    plain = make_module().family
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


def test_divergence_is_read_at_the_logging_interval_and_stops_the_run(tmp_path):
    """The step keeps the non-finite check on the device; the run stops as ``diverged`` when
    the flag is read (the logging interval), naming the first bad step."""
    module = make_module(optimizer_d=functools.partial(torch.optim.SGD, lr=1e30))
    fit(module, steps=40, tmp_path=tmp_path, log_every_n_steps=10)
    assert module.status == "diverged"
    assert module.diverged_at is not None and module.diverged_at < module.g_step
    assert module.g_step % 10 == 0  # found when the flag was read


@pytest.mark.slow
def test_compiled_nets_train_like_eager_ones(tmp_path):
    """compile=true (torch.compile of G and D, forward and backward) follows the eager run
    over 200 seeded steps within float tolerance (fused kernels round differently)."""
    from ganlab.train import build, compose_config

    finals = []
    for compiled in ("false", "true"):
        cfg = compose_config(["logger=none", "~callbacks.evaluate", "steps=200", "threads=1",
                              f"compile={compiled}", "optim.g.lr=1e-4", "optim.d.lr=1e-4"],
                             tmp_path / compiled)  # fmt: skip
        pl.seed_everything(0, verbose=False)
        trainer, module, datamodule = build(cfg)
        trainer.fit(module, datamodule=datamodule)
        finals.append({k: v.detach().clone() for k, v in module.state_dict().items()})
        nets = (module.family.generator, module.family.discriminator)
        assert all((n._compiled_call_impl is not None) == (compiled == "true") for n in nets)
    eager, compiled = finals
    assert eager.keys() == compiled.keys()  # compiled in place: the same checkpoint keys
    for key in eager:
        assert_close(compiled[key], eager[key], rtol=0, atol=1e-2, msg=key)


def test_compile_refuses_a_gradient_penalty():
    with pytest.raises(ValueError, match="compile=true: a gradient penalty"):
        make_module(regularizers=[R1Penalty(weight=1.0)], compile=True)
