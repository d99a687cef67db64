"""Latent arithmetic (Radford et al. 2016, sec. 6.3): the attribute measures, groups and their
mean z, the attribute direction's walk, the figure, and the sample command's options."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from conftest import run_train
from ganlab.arithmetic import (
    arithmetic,
    attribute_walk,
    direction,
    domain_labeler,
    ink,
    parse,
    slant,
)
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.families import LatentGAN
from ganlab.latent import group_means, walk
from ganlab.losses import NonSaturatingLoss
from ganlab.sample import SampleOptions, sample

COLS = torch.arange(16.0)


def stroke(width: torch.Tensor, centre: torch.Tensor, lean: torch.Tensor | None = None):
    """Images (B, 1, 16, 16) of a vertical stroke of ``width`` px around column ``centre``;
    ``lean`` px per row shifts it right towards the top."""
    rows = torch.arange(16.0)[:, None]
    lean = torch.zeros_like(width) if lean is None else lean
    x = centre[:, None, None] + lean[:, None, None] * (7.5 - rows)  # (B, 16, 1)
    ink_ = torch.sigmoid(4 * (width[:, None, None] / 2 - (COLS - x).abs()))  # (B, 16, 16)
    return (2 * ink_ - 1)[:, None]


class StrokeG(nn.Module):
    """z (B, 8) -> a stroke whose width grows with z·u and whose column follows z·v."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.u = nn.Parameter(torch.randn(8, generator=gen) / 8**0.5)
        self.v = nn.Parameter(torch.randn(8, generator=gen) / 8**0.5)

    def forward(self, z, y=None):
        return stroke(1 + 6 * torch.sigmoid(z @ self.u), 7.5 + 3 * torch.tanh(z @ self.v))


@pytest.fixture
def strokes() -> LatentGAN:
    fam = LatentGAN(generator=StrokeG, discriminator=lambda **kw: nn.Linear(1, 1),
                    loss=NonSaturatingLoss(), latent_dim=8, data_kind="images")  # fmt: skip
    fam.setup(DataSpec("images", {"x": (1, 16, 16)}))
    return fam.eval()


def test_ink_grows_with_stroke_width_and_slant_has_the_lean_sign():
    widths = torch.tensor([1.0, 2.0, 4.0, 6.0])
    assert (ink(stroke(widths, torch.full((4,), 7.5))).diff() > 0).all()
    leaning = slant(stroke(torch.full((3,), 2.0), torch.full((3,), 7.5),
                           torch.tensor([-0.3, 0.0, 0.3])))  # fmt: skip
    assert leaning[0] < -0.1 and abs(leaning[1]) < 1e-4 and leaning[2] > 0.1
    assert leaning[2] == pytest.approx(0.3, rel=0.05)  # the shear per row


def test_expressions_parse_to_signed_groups():
    assert parse("thick - thin+label:7") == [(1, "thick"), (-1, "thin"), (1, "label:7")]
    assert parse("-z:1,2+left") == [(-1, "z:1,2"), (1, "left")]
    with pytest.raises(UserError, match="cannot read"):
        parse("thick--thin")


def test_group_means_and_walks():
    z = torch.arange(12.0).view(6, 2)
    means = group_means(z, [torch.tensor([0, 1]), torch.tensor([5])])
    assert torch.equal(means, torch.tensor([[1.0, 2.0], [10.0, 11.0]]))
    path = walk(z[:2], torch.tensor([1.0, -1.0]), torch.tensor([0.0, 2.0]))
    assert path.shape == (2, 2, 2) and torch.equal(path[1, 1], z[1] + torch.tensor([2.0, -2.0]))
    with pytest.raises(ValueError, match="group 0 is empty"):
        group_means(z, [torch.tensor([], dtype=torch.long)])


def test_ink_grows_on_average_monotonically_along_the_thickness_direction(strokes):
    """thick - thin, from groups chosen by measured ink, moves the ink of 16 walks up at
    every one of 9 steps on average, though the direction was never told about u."""
    d = direction(strokes, "thick-thin", pool=500)
    images = attribute_walk(strokes, d, rows=16, steps=9, span=1.5)
    mean_ink = ink(images).view(16, 9).mean(dim=0)
    assert (mean_ink.diff() > 0).all(), mean_ink
    assert mean_ink[-1] - mean_ink[0] > 0.1
    reverse = attribute_walk(strokes, direction(strokes, "thin-thick", pool=500), rows=16, steps=9)
    assert (ink(reverse).view(16, 9).mean(dim=0).diff() < 0).all()


def test_the_figure_rows_and_the_result_z(strokes):
    fig = arithmetic(strokes, "z:1-z:2+z:3", pool=64, columns=5)
    assert fig.images.shape == (4 * 5, 1, 16, 16) and fig.columns == 5
    z = strokes.fixed_z(64)
    assert torch.allclose(fig.result, z[1] - z[2] + z[3])
    grid, _ = strokes.grid(64)
    assert torch.equal(fig.images[0], grid[1])  # a z: group shows its grid images ...
    assert torch.equal(fig.images[4], grid[1])  # ... and the image of its mean z
    assert torch.equal(fig.images[15], strokes.generate(1, z=fig.result[None])[0])
    thick = arithmetic(strokes, "thick-thin+z:0", pool=200, quantile=0.1)
    assert (
        ink(strokes.generate(200)[thick.groups["thick"]]).min()
        > ink(strokes.generate(200)[thick.groups["thin"]]).max()
    )


@pytest.mark.parametrize(("expression", "message"), [
    ("bold", "unknown group 'bold': use label:K, thick, thin, right, left or z:I,J,..."),
    ("z:70", "z:70: the pool holds z 0..63: raise pool=..."),
    ("label:3", "label:3 needs the data's domain classifier; this run has none"),
])  # fmt: skip
def test_group_mistakes_are_named(strokes, expression, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        arithmetic(strokes, expression, pool=64)


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("arith")
    run_train(root / "plain", "model=dcgan", "data=digits", "data.image_size=16",
              "model.generator.width=8", "model.discriminator.width=8", "trainer=cpu",
              "threads=1", "~callbacks.metrics", "steps=100", "sample_every=100")  # fmt: skip
    return root / "plain" / "checkpoints" / "last.ckpt"


def opts(**kw) -> SampleOptions:
    return SampleOptions(**{k: str(v) if k in ("ckpt", "out") else v for k, v in kw.items()})


def test_sample_writes_the_arithmetic_figure_and_the_walk(digits_run, tmp_path):
    from ganlab.checkpoints import load_trained

    trained = load_trained(digits_run)
    labels = domain_labeler(trained.config)(trained.family.generate(500))  # the digits classifier
    common = int(labels.mode().values)
    fig = sample(opts(ckpt=digits_run, out=tmp_path / "a.png", pool=500, columns=6,
                      arithmetic=f"label:{common}-thin+thick"))  # fmt: skip
    assert Image.open(fig).size == (6 * 18 + 2, 4 * 18 + 2)  # 3 groups + the result row
    strip = sample(opts(ckpt=digits_run, out=tmp_path / "w.png", direction="thick-thin",
                        interpolate=3, steps=7))  # fmt: skip
    assert Image.open(strip).size == (7 * 18 + 2, 3 * 18 + 2)


def test_a_trained_generator_thickens_along_thick_minus_thin(digits_run):
    from ganlab.checkpoints import load_trained

    family = load_trained(digits_run).family
    d = direction(family, "thick-thin", pool=1000)
    mean_ink = ink(attribute_walk(family, d, rows=32, steps=7)).view(32, 7).mean(dim=0)
    assert (mean_ink.diff() > 0).all(), mean_ink


@pytest.mark.parametrize(("kw", "message"), [
    (dict(arithmetic="thick", direction="thin"), "give arithmetic=A-B+C or direction=A-B"),
    (dict(direction="thick+thin"), "a direction is two groups A-B"),
    (dict(arithmetic="thick", quantile=0.9), "quantile must be in (0, 0.5]"),
])  # fmt: skip
def test_option_mistakes_are_one_line(digits_run, tmp_path, kw, message):
    with pytest.raises(UserError) as err:
        sample(opts(ckpt=digits_run, out=tmp_path / "x.png", **kw))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_families_without_a_latent_refuse_in_one_line(tmp_path):
    run_train(tmp_path / "p2p", "family=pix2pix", "model.generator.width=8",
              "model.discriminator.width=8", "trainer=cpu", "threads=1", "steps=2",
              "~callbacks.translation", "~callbacks.metrics")  # fmt: skip
    with pytest.raises(UserError) as err:
        sample(opts(ckpt=tmp_path / "p2p/checkpoints/last.ckpt", out=tmp_path / "a.png",
                    arithmetic="thick-thin"))  # fmt: skip
    assert str(err.value).startswith("sample draws from a latent GAN; this checkpoint is")
