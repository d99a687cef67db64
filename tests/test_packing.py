"""PacGAN's packed discriminator (Lin et al. 2018): packing shapes for points and images, the
packed D in the latent GAN, gradient penalties on packs, and the one-line refusals."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from conftest import assert_one_error_line, run_cli
from ganlab.data.spec import DataSpec
from ganlab.families import LatentGAN, StepContext
from ganlab.losses import GradientPenalty, NonSaturatingLoss
from ganlab.nets import MLP, DCGANDiscriminator, DCGANGenerator
from ganlab.nets.packing import Packed, pack


def test_points_pack_on_features_in_sample_order():
    x = torch.arange(12.0).view(6, 2)  # 6 points
    packed = pack(x, 3)
    assert packed.shape == (2, 6)
    assert torch.equal(packed[1], torch.cat([x[3], x[4], x[5]]))


def test_images_pack_on_channels_in_sample_order():
    x = torch.randn(6, 3, 4, 4)
    packed = pack(x, 2)  # (B/m, m·C, H, W)
    assert packed.shape == (3, 6, 4, 4)
    assert torch.equal(packed[2, :3], x[4]) and torch.equal(packed[2, 3:], x[5])


def test_a_batch_that_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="batch of shape \\(5, 2\\), whose size is not a multiple"):
        pack(torch.zeros(5, 2), 2)


def latent(kind: str, m: int, **kwargs) -> LatentGAN:
    torch.manual_seed(0)
    if kind == "points":
        nets = dict(
            generator=functools.partial(MLP, in_dim=2, out_dim=2, width=8, depth=1),
            discriminator=functools.partial(MLP, in_dim=2, out_dim=1, width=8, depth=1),
        )
        spec = DataSpec("points", {"x": (2,)})
    else:
        nets = dict(
            generator=functools.partial(DCGANGenerator, 8, width=4),
            discriminator=functools.partial(DCGANDiscriminator, width=4),
        )
        spec = DataSpec("images", {"x": (3, 16, 16)})  # fmt: skip
    fam = LatentGAN(**nets, loss=NonSaturatingLoss(), latent_dim=2 if kind == "points" else 8,
                    data_kind=kind, pack=m, **kwargs)  # fmt: skip
    fam.setup(spec)
    return fam


@pytest.mark.parametrize(("kind", "m", "width"), [("points", 2, 4), ("points", 4, 8),
                                                  ("images", 3, 9)])  # fmt: skip
def test_packed_d_reads_m_samples_and_scores_each_pack(kind, m, width):
    """D is built for m samples (features x m, channels x m) and gives one score per pack,
    for real and fake batches alike; G is the unpacked one."""
    fam = latent(kind, m)
    d = fam.discriminator
    assert isinstance(d, Packed) and d.pack == m
    first = next(d.net.parameters())
    assert first.shape[1] == width  # the first layer reads m samples
    real = torch.randn(12, *((2,) if kind == "points" else (3, 16, 16)))
    assert d(real).shape == (12 // m, 1)
    ctx = StepContext(0, torch.Generator().manual_seed(0))
    d_phase, g_phase = fam.phases()  # each phase carries its own loss
    loss, stats = fam.phase_loss(d_phase, (real, None), ctx)
    assert loss.ndim == 0 and torch.isfinite(loss)
    g_loss, _ = fam.phase_loss(g_phase, (real, None), ctx)
    assert torch.isfinite(g_loss) and fam.generate(5).shape[0] == 5
    if kind == "points":  # the plots' D(x): a pack of m copies of each point
        assert fam.critic(torch.randn(7, 2)).shape == (7, 1)


def test_gradient_penalty_acts_on_the_packs_d_sees():
    """A linear packed critic with a unit weight over the pack (2m features) has gradient
    norm 1 on every pack: its penalty is 0, though each sample's own share of the
    gradient is shorter than 1."""
    fam = latent("points", 2, regularizers=[GradientPenalty(10.0)])
    linear = nn.Linear(4, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))  # |w| = 1 over the pack
    fam.discriminator.net = linear
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    penalty = fam._regularize(real, fake, 0, None, torch.Generator())
    assert penalty.item() == pytest.approx(0.0, abs=1e-10)
    per_sample = GradientPenalty(10.0).penalty(fam.discriminator, real, fake, torch.Generator())
    # per-sample norms of 1/sqrt(2): what the penalty would be on the samples, not the packs
    assert per_sample.item() == pytest.approx(10 * (2**-0.5 - 1) ** 2)


@pytest.mark.parametrize(("args", "message"), [
    (["model.pack=3"], "error: model.pack=3 packs D's input in groups of 3 samples, so "
     "data.batch_size must divide by 3, got 256: set data.batch_size=255"),
    (["model=dcgan", "model.conditional=true", "model.pack=2", "data.batch_size=8",
      "model.generator.width=8", "model.discriminator.width=8", "data.image_size=16"],
     "error: model.pack=2 packs D's input, and a class-conditional D cannot be packed (the "
     "samples of a pack have their own classes): set model.pack=1 or model.conditional=false"),
])  # fmt: skip
def test_mistakes_are_one_line_before_training(args, message, tmp_path):
    result = run_cli(*args, "logger=csv", "trainer=smoke", cwd=tmp_path)
    assert_one_error_line(result, message)
    assert "train (G steps)" not in result.stderr
