"""The MLP's random Fourier features (Tancik et al. 2020): what they compute, that without
them nothing changes, and that with them a D of ReLUs resolves a toy mode's width."""

from __future__ import annotations

import math
import re

import hydra
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from ganlab.nets import MLP
from ganlab.train import compose_config


def test_without_features_the_mlp_draws_and_holds_what_it_did():
    torch.manual_seed(0)
    mlp = MLP(2, 1, width=8, depth=2, activation="leaky_relu")
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.LeakyReLU(0.2),
                          nn.Linear(8, 1))  # fmt: skip
    assert list(mlp.state_dict()) == [f"net.{k}" for k in plain.state_dict()]
    for a, b in zip(mlp.net.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_features_are_x_then_sines_then_cosines():
    mlp = MLP(2, 3, width=8, depth=2, fourier_features=5, fourier_scale=0.1)
    assert mlp.fourier.shape == (5, 2)
    assert mlp.net[0].in_features == 2 + 2 * 5
    x = torch.randn(4, 2)
    phase = x @ mlp.fourier.T
    assert_close(mlp(x), mlp.net(torch.cat([x, phase.sin(), phase.cos()], dim=1)))


@pytest.mark.parametrize("scale", [0.01, [0.01, 1.0]])
def test_frequencies_follow_the_length_scale(scale):
    """|b| = R / s with R ~ Rayleigh(1) (2-D) and log s uniform on [log lo, log hi]:
    E[log |b|] = -(log lo + log hi) / 2 + (log 2 - Euler's gamma) / 2."""
    torch.manual_seed(0)
    lo, hi = (scale, scale) if isinstance(scale, float) else scale
    freqs = MLP(2, 1, fourier_features=4096, fourier_scale=scale).fourier
    expected = -(math.log(lo) + math.log(hi)) / 2 + (math.log(2) - 0.5772156649) / 2
    assert freqs.norm(dim=1).log().mean().item() == pytest.approx(expected, abs=0.1)


def test_the_frequencies_travel_with_the_state_dict():
    torch.manual_seed(0)
    mlp = MLP(2, 1, fourier_features=4, fourier_scale=0.05)
    torch.manual_seed(1)
    other = MLP(2, 1, fourier_features=4, fourier_scale=0.05)
    x = torch.randn(6, 2)
    assert not torch.equal(mlp(x), other(x))
    other.load_state_dict(mlp.state_dict())
    assert torch.equal(mlp(x), other(x))


def _width_accuracy(fourier_features: int, steps: int = 300) -> float:
    """A D trained to tell a mode of std 0.01 (ring8's) from one of std 0.004 at the same
    centre: its balanced accuracy on fresh samples (about 0.8 is the best any D can do)."""
    torch.manual_seed(0)
    d = MLP(2, 1, width=64, depth=2, activation="leaky_relu",
            fourier_features=fourier_features, fourier_scale=0.01)  # fmt: skip
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    centre = torch.tensor([1.0, 0.0])

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        wide = centre + 0.01 * torch.randn(n, 2, generator=gen)
        return wide, centre + 0.004 * torch.randn(n, 2, generator=gen)

    for _ in range(steps):
        wide, narrow = draw(256)
        loss = F.softplus(-d(wide)).mean() + F.softplus(d(narrow)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    wide, narrow = draw(2000)
    with torch.no_grad():
        return ((d(wide) > 0).float().mean() + (d(narrow) < 0).float().mean()).item() / 2


def test_fourier_features_let_d_see_a_modes_width():
    """Why ring8's modes come out narrow with a plain D: it cannot tell a mode of the data's
    width from a narrower one (near chance); with 8 Fourier features at the mode's std it can."""
    with_features, plain = _width_accuracy(8), _width_accuracy(0)
    assert with_features >= 0.75
    assert with_features - plain >= 0.1, (with_features, plain)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fourier_features": -1}, "MLP: fourier_features must be >= 0"),
        ({"fourier_features": 4, "fourier_scale": 0.0}, "fourier_scale > 0"),
        ({"fourier_features": 4, "fourier_scale": [1.0, 0.1]}, "got 4 and [1.0, 0.1]"),
    ],
)
def test_bad_fourier_arguments_fail_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        MLP(2, 1, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("experiment, std", [("ring8_fourier", 0.01), ("grid25_fourier", 0.05)])
def test_the_fourier_recipes_put_8_features_at_the_modes_std(experiment, std, tmp_path):
    """The recipes are their *_best recipe plus the features, whose scale follows the data."""
    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    best = compose_config([f"experiment={experiment.replace('fourier', 'best')}"], tmp_path)
    assert cfg.data.distribution.std == std
    assert cfg.model.discriminator.fourier_features == 8
    assert cfg.model.discriminator.fourier_scale == std
    cfg.model.discriminator.fourier_features = 0
    cfg.model.discriminator.fourier_scale = 1.0
    best.steps = cfg.steps  # grid25_fourier also trains twice as long
    assert cfg == best
    d = hydra.utils.instantiate(compose_config([f"experiment={experiment}"]).model.discriminator)
    assert d.fourier.shape == (8, 2)
