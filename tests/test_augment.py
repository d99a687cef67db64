"""Differentiable augmentation of what D sees (DiffAugment, ADA): the transforms' known values,
ADA's p update by hand, D's and G's steps both seeing the view (and the penalties acting on
it), G's gradient through it, the refusals, exact resume of p, and no leak into the samples."""

import csv

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from conftest import resumed_equals_uninterrupted
from ganlab.augment import (
    ADA,
    ADA_P,
    ADA_RT,
    Augment,
    DiffAugment,
    brightness,
    contrast,
    cutout,
    saturation,
    shift,
    translation,
)
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.families.base import StepContext
from ganlab.families.latent import LatentGAN
from ganlab.families.unrolled import UnrolledGAN
from ganlab.losses import NonSaturatingLoss, R1Penalty, Regularizer

SIZE = 8


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- the transforms
def test_shift_moves_pixels_and_pads_with_zeros():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    out = shift(x, torch.tensor([1, 0]), torch.tensor([0, -2]))
    # image 0: one row down, the top row padded
    assert_close(out[0, 0, 1:], x[0, 0, :-1])
    assert_close(out[0, 0, 0], torch.zeros(4))
    # image 1: two columns left, the right two padded
    assert_close(out[1, 0, :, :2], x[1, 0, :, 2:])
    assert_close(out[1, 0, :, 2:], torch.zeros(4, 2))


def test_translation_shifts_by_at_most_an_eighth_and_reaches_every_shift():
    x = torch.zeros(400, 1, SIZE, SIZE)
    x[:, :, 4, 4] = 1.0  # one lit pixel
    out = translation(x, gen())
    lit = out.flatten(1).argmax(dim=1)
    rows, cols = lit // SIZE, lit % SIZE
    moves = set(zip((rows - 4).tolist(), (cols - 4).tolist(), strict=True))
    assert moves == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}  # 8 x 1/8 = 1 pixel
    assert_close(out.sum(dim=(1, 2, 3)), torch.ones(400))  # moved, not blurred


def test_cutout_zeroes_one_square_of_half_the_size_and_keeps_the_rest():
    x = torch.ones(200, 1, SIZE, SIZE)
    out = cutout(x, gen())
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # a 4 x 4 square, clipped at the borders
    assert set(out.unique().tolist()) == {0.0, 1.0}
    for image in out[:, 0]:
        r, c = (image == 0).nonzero(as_tuple=True)
        assert (r.max() - r.min() + 1) * (c.max() - c.min() + 1) == len(r)  # a rectangle


def test_color_transforms_known_values():
    x = torch.randn(64, 3, SIZE, SIZE, generator=gen(1))
    moved = brightness(x, gen(2)) - x  # a constant per image in [-0.5, 0.5]
    per_image = moved.flatten(1)
    assert_close(per_image, per_image[:, :1].expand_as(per_image))
    assert per_image.abs().max() <= 0.5
    out = contrast(x, gen(3))  # keeps each image's mean
    assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    gray = torch.randn(4, 1, SIZE, SIZE, generator=gen(4))
    assert_close(saturation(gray, gen(5)), gray)  # one channel: nothing to saturate


def test_ada_at_p_zero_is_the_identity_and_at_p_one_transforms_every_image():
    x = torch.randn(32, 1, SIZE, SIZE, generator=gen(1))
    still = ADA(policy=["color", "translation", "cutout"], target=None, p=0.0)
    assert torch.equal(still(x, gen()), x)
    always = ADA(policy=["translation"], target=None, p=1.0)
    diffaug = DiffAugment(policy=["translation"])
    out = always(x, gen())
    assert not torch.equal(out, x)
    # p = 1: the transform of every image, with the shifts of the draws after ADA's coin
    g = gen()
    torch.rand(32, generator=g)
    assert_close(out, diffaug(x, g))


def test_policy_words_are_checked():
    assert DiffAugment("color, cutout").policy == ("color", "cutout")
    with pytest.raises(ValueError, match="colour is not a transform: choose a list of color"):
        DiffAugment(["colour"])


# ---------------------------------------------------------------------- ADA's p
def test_ada_p_follows_the_sign_of_d_real_against_the_target_by_hand():
    ada = ADA(target=0.6, interval=2, ramp=10)
    out = {  # D's outputs on the reals of an update -> E[sign]
        "confident": torch.tensor([2.0, 1.0, 0.5, 3.0]),  # 1.0
        "half": torch.tensor([2.0, 1.0, -0.5, 3.0]),  # 0.5
        "unsure": torch.tensor([-2.0, 1.0, -0.5, 3.0]),  # 0.0
    }
    # (updates observed, expected p, expected r_t): p moves by 2/10 every 2 updates
    ada.observe(out["confident"])
    assert_close((ada.p, ada.rt), (torch.tensor(0.0), torch.tensor(0.0)))  # not due yet
    ada.observe(out["half"])  # r_t = (1 + 0.5) / 2 = 0.75 > 0.6: p up by 0.2
    assert_close((ada.p, ada.rt), (torch.tensor(0.2), torch.tensor(0.75)))
    for _ in range(8):  # r_t = 1: four more adjustments, p clipped at 1
        ada.observe(out["confident"])
    assert_close((ada.p, ada.rt), (torch.tensor(1.0), torch.tensor(1.0)))
    ada.observe(out["half"])
    ada.observe(out["unsure"])  # r_t = 0.25 < 0.6: p down by 0.2
    assert_close((ada.p, ada.rt), (torch.tensor(0.8), torch.tensor(0.25)))
    assert set(ada.state_dict()) == {"p", "rt", "signs", "pending"}  # checkpointed
    assert ada.stats() == {ADA_P: ada.p, ADA_RT: ada.rt}


def test_fixed_ada_keeps_p():
    ada = ADA(target=None, interval=1, p=0.3)
    for _ in range(5):
        ada.observe(torch.ones(8))
    assert_close((ada.p, ada.rt), (torch.tensor(0.3), torch.tensor(1.0)))


# ---------------------------------------------------------------------- in the families
class PixelG(nn.Module):
    """z -> one image, (B, C, S, S): a linear map and tanh."""

    def __init__(self, latent_dim: int = 8, image_size: int = SIZE, channels: int = 1):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.net = nn.Linear(latent_dim, channels * image_size**2)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)  # (B, C, S, S)


class PixelD(nn.Module):
    """image -> score, an MLP on the pixels; records the batches it sees."""

    def __init__(self, image_size: int = SIZE, channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size**2, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
        )
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach())
        return self.net(x)


def family(augment=None, cls=LatentGAN, regularizers=(), **kwargs):
    fam = cls(PixelG, PixelD, NonSaturatingLoss(), latent_dim=8, data_kind="images",
              regularizers=list(regularizers), **kwargs)  # fmt: skip
    fam.setup(DataSpec("images", {"x": (1, SIZE, SIZE)}))
    if augment is not None:
        fam.use_augment(augment)
    return fam


class Negate(Augment):
    """A test augmentation: D sees -x (so a view is told from its input)."""

    def forward(self, x, generator):
        return -x


def phase_loss(fam, name, real, step=0):
    ctx = StepContext(step, gen(step))
    ctx.optimizers = {"d": torch.optim.Adam(fam.discriminator.parameters())}  # unrolled: its rule
    ctx.phase = next(p for p in fam.phases() if p.name == name)
    return fam.phase_loss(ctx.phase, (real, None), ctx)


@pytest.mark.parametrize(
    "cls, kwargs",
    [(LatentGAN, {}), (UnrolledGAN, {"unroll_steps": 1}), (UnrolledGAN, {"unroll_steps": 0})],
)
def test_d_and_g_steps_show_d_the_view(cls, kwargs):
    fam = family(Negate(), cls, **kwargs)
    real = torch.rand(4, 1, SIZE, SIZE)
    # G's z in either step: the step's first draw (no labels)
    fake = fam.g(fam.sample_z(4, gen(0))).detach()
    phase_loss(fam, "d", real)
    assert_close(fam.discriminator.seen, [-real, -fake], rtol=0, atol=0)
    fam.discriminator.seen.clear()
    phase_loss(fam, "g", real)[0].backward()
    # D (the unrolled D too, in its look-ahead and for G's loss) saw -G(z), never G(z)
    seen = fam.discriminator.seen
    assert any(torch.equal(x, -fake) for x in seen)
    assert not any(torch.equal(x, fake) or torch.equal(x, real) for x in seen)


def test_g_gradient_passes_through_the_augmentation():
    fam = family(DiffAugment())
    real = torch.rand(16, 1, SIZE, SIZE) * 2 - 1
    loss, _ = phase_loss(fam, "g", real)
    loss.backward()
    grads = [p.grad for p in fam.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


class Spy(Regularizer):
    """Records what a penalty is computed on."""

    def penalty(self, d, real, fake, generator=None):
        self.on = (real.detach(), fake.detach())
        return None


def test_penalties_act_on_what_d_sees():
    spy = Spy()
    fam = family(DiffAugment(["translation", "cutout"]), regularizers=[spy])
    real = torch.rand(8, 1, SIZE, SIZE) + 1.0
    _, stats = phase_loss(fam, "d", real)
    seen_real = fam.discriminator.seen[0]
    assert not torch.equal(seen_real, real)  # augmented
    assert torch.equal(spy.on[0], seen_real)
    assert torch.equal(spy.on[1], fam.discriminator.seen[1])


def test_ada_logs_p_and_r_t_from_the_d_step():
    fam = family(ADA(target=0.6, interval=1, ramp=4, p=0.5))
    _, stats = phase_loss(fam, "d", torch.rand(8, 1, SIZE, SIZE))
    assert set(stats) >= {ADA_P, ADA_RT}
    assert stats[ADA_P] in (torch.tensor(0.25), torch.tensor(0.75))  # moved by 1/4


def test_refused_where_it_cannot_apply_in_one_line():
    from ganlab.families.cyclegan import CycleGAN
    from ganlab.families.pix2pix import Pix2Pix

    cases = [
        (Pix2Pix(None, None, NonSaturatingLoss()), "pix2pix", r"judges \(input, output\) pairs"),
        (CycleGAN(None, None, NonSaturatingLoss()), "cyclegan", "two Ds would share"),
        (LatentGAN(None, None, NonSaturatingLoss(), 2), "latent", "trains on vectors"),
    ]
    for fam, name, why in cases:
        with pytest.raises(UserError, match=why) as err:
            fam.use_augment(DiffAugment(), {"augment": "diffaug", "family": name, "model": "m"})
        assert str(err.value).startswith("augment=diffaug ") and "\n" not in str(err.value)
        assert "set augment=none" in str(err.value)


# ---------------------------------------------------------------------- runs
RUN = ["model=dcgan", "data.image_size=16", "model.generator.width=8"]
RUN += ["model.discriminator.width=8", "augment=ada", "augment.ramp=8", "augment.interval=2"]
RUN += ["steps=12", "log_every=2", "eval_every=1000", "sample_every=1000", "ckpt_every=1000"]
RUN += ["~callbacks.metrics", "trainer=cpu", "threads=1"]


def test_ada_run_resumes_exactly_and_logs_p(tmp_path):
    a = resumed_equals_uninterrupted(tmp_path, RUN, at=5)
    assert {"family.augment.p", "family.augment.rt", "family.augment.pending"} <= a.keys()
    full = tmp_path / "full"
    rows = list(csv.DictReader(open(full / "metrics.csv")))
    p = [float(r["train/ada_p"]) for r in rows if r.get("train/ada_p")]
    assert len(p) == 12 // 2 and len(set(p)) > 1  # logged, and moving (by 2/8 per 2 updates)
    assert_close(torch.tensor(p[-1]), a["family.augment.p"].float())
    from ganlab.sample import main as sample  # the commands rebuild the family with its p

    sample([f"ckpt={full / 'checkpoints' / 'last.ckpt'}", "n=4", f"out={tmp_path / 's.png'}"])
    assert (tmp_path / "s.png").is_file()


# ---------------------------------------------------------------------- no leak
#: the data: one image, grey (-0.5), with a bright (0.5) 3 x 3 block in its left half (values
#: G's tanh reaches quickly)
PATTERN = torch.full((1, SIZE, SIZE), -0.5)
PATTERN[:, 2:5, 1:4] = 0.5


def train_on_pattern(augment: Augment, reals_only: bool, steps: int = 400) -> torch.Tensor:
    """G's samples after a short seeded run on copies of ``PATTERN``; ``reals_only``: the
    augmentation leaks (D sees augmented reals against plain fakes, G's step plain fakes)."""
    torch.set_num_threads(1)  # small nets: fastest on one (restored by conftest)
    torch.manual_seed(0)
    # R1 (Mescheder et al. 2018) makes a GAN on one image (a Dirac) converge, not circle
    fam = family(augment, regularizers=[R1Penalty(weight=1.0)])
    real = PATTERN.expand(64, -1, -1, -1).clone()
    if reals_only:
        fam.d_view = lambda x, ctx: augment(x, ctx.generator) if x is real else x
    adam = dict(lr=2e-3, betas=(0.5, 0.999))
    opts = {
        "d": torch.optim.Adam(fam.discriminator.parameters(), **adam),
        "g": torch.optim.Adam(fam.generator.parameters(), **adam),
    }
    for step in range(steps):
        ctx = StepContext(step, gen(step))
        for phase in fam.phases():
            ctx.phase = phase
            for opt in opts.values():
                opt.zero_grad(set_to_none=True)
            loss, _ = fam.phase_loss(phase, (real, None), ctx)
            loss.backward()
            opts[phase.optimizer].step()
        fam.discriminator.seen.clear()
    return fam.generate(256)


def error(samples: torch.Tensor) -> float:
    """Mean absolute pixel error of the samples to the data's one image."""
    return (samples - PATTERN).abs().mean().item()


AUGMENTS = {
    "diffaug": lambda: DiffAugment(["color", "translation"]),
    "ada_p0.3": lambda: ADA(["translation", "color"], target=None, p=0.3),
}


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_no_leak_samples_are_not_shifted_or_recoloured(name):
    """Augmenting real and fake alike, G learns the data itself: its samples are the
    pattern, neither shifted nor recoloured. The control: the same augmentation applied to
    the reals only leaks into the samples (the test can fail)."""
    fair = error(train_on_pattern(AUGMENTS[name](), reals_only=False))
    leaky = error(train_on_pattern(AUGMENTS[name](), reals_only=True))
    # measured: diffaug 0.041 against 0.336 leaking; ADA at p = 0.3: 0.051 against 0.202
    assert fair < 0.1, fair
    assert leaky > 2 * fair and leaky > 0.15, (fair, leaky)


def test_a_checkpoints_augment_is_rebuilt_and_checked(tmp_path):
    """``augment`` is among the parts the checkpoint commands rebuild: a shipped
    augmentation is trusted, a crafted ``_target_`` there is refused in one line."""
    from ganlab.trust import is_trusted, trusted_config

    assert is_trusted("ganlab.augment.ADA") and is_trusted("ganlab.augment.DiffAugment")
    kept = trusted_config({"augment": {"_target_": "ganlab.augment.ADA", "p": 0.1}}, "c.ckpt")
    assert kept["augment"]["p"] == 0.1
    with pytest.raises(UserError, match=r"'os.system' \(at augment\)"):
        trusted_config({"augment": {"_target_": "os.system"}}, "c.ckpt")


def test_digits_fraction_is_a_fixed_stratified_share_of_the_training_split():
    """``data.fraction`` (small-data runs): each class's share of the training split, the same
    images whatever the run seed, the test split untouched, real statistics cached apart."""
    from ganlab.data.images import Digits

    full_x, full_y = Digits(image_size=8).real_images("train")
    tenth = Digits(image_size=8, fraction=0.1, seed=3)
    x, y = tenth.real_images("train")
    counts = torch.bincount(full_y, minlength=10).float()
    expected = counts - (counts * 0.9).round()  # what stratified_split holds out: the rest
    assert torch.equal(torch.bincount(y, minlength=10).float(), expected)
    assert torch.equal(x, Digits(image_size=8, fraction=0.1, seed=7).real_images("train")[0])
    assert all((full_x == image).flatten(1).all(1).any() for image in x)  # a subset of train
    assert torch.equal(tenth.real_images("test")[0], Digits(image_size=8).real_images("test")[0])
    assert tenth.cache_key != Digits().cache_key
    with pytest.raises(ValueError, match=r"data.fraction must be in \(0, 1\], got 0"):
        Digits(fraction=0)
