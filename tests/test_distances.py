"""Distribution distances of the toy data and their real-vs-real floors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from ganlab.data.toy import Gaussian1D, grid, ring
from ganlab.metrics.distances import kernel_mean, ks_statistic, mmd2, normal_cdf
from ganlab.metrics.registry import METRICS


def shrunk(mixture, n: int, spread: float, seed: int = 3) -> torch.Tensor:
    """``n`` samples of ``mixture`` with every mode ``spread`` x as wide as the data's."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(mixture.n_modes, (n,), generator=g)
    return mixture.means[idx] + spread * mixture.std * torch.randn(n, 2, generator=g)


def test_mmd_known_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # k(x, x) mean = (2 + 2 e^{-1/2}) / 4 for bandwidth 1; MMD of a sample with itself is 0
    assert kernel_mean(x, x, 1.0) == pytest.approx((2 + 2 * math.exp(-0.5)) / 4)
    assert mmd2(x, x, 1.0) == pytest.approx(0.0, abs=1e-7)
    far = x + 100.0  # no kernel overlap: MMD = k(x,x) + k(y,y)
    assert mmd2(x, far, 1.0) == pytest.approx(2 * kernel_mean(x, x, 1.0))
    with pytest.raises(ValueError, match=r"\(N, D\) and \(M, D\)"):
        kernel_mean(x, torch.zeros(3, 3), 1.0)


def test_ks_statistic_equals_scipys():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)).double() * 1.25 + 4.1
    want = stats.kstest(x.numpy(), stats.norm(loc=4, scale=1.25).cdf).statistic
    assert ks_statistic(x, normal_cdf(4.0, 1.25)) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("mixture", [ring(), grid()], ids=["ring8", "grid25"])
def test_real_samples_score_at_the_floor_and_narrow_modes_above_it(mixture):
    real = mixture.evaluate(mixture.sample(2500, torch.Generator().manual_seed(11)))
    assert 0 < real["mmd_floor"] and real["mmd"] < 1.5 * real["mmd_floor"]
    half = mixture.evaluate(shrunk(mixture, 2500, 0.5))
    assert half["hq"] >= real["hq"]  # what mode coverage rewards...
    assert half["mmd"] > 5 * half["mmd_floor"]  # ...the distance does not


@pytest.mark.parametrize("mixture", [ring(), grid()], ids=["ring8", "grid25"])
def test_the_floor_is_the_mean_statistic_of_real_samples(mixture):
    """The mixture's floor is E[MMD²] of real samples against the reference sample, in closed
    form: equal to the mean over 40 real draws within 3 standard errors."""
    n = 400
    torch.manual_seed(0)
    before = torch.get_rng_state()
    floors = mixture.floors(n)
    assert torch.equal(torch.get_rng_state(), before)  # the training streams are not touched
    assert mixture.floors(n) is floors  # computed once per size
    real, real_self = mixture._reference(n)
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor(
        [mmd2(mixture.sample(n, g), real, mixture.std, real_self) for _ in range(40)]
    )
    error = 3 * draws.std() / math.sqrt(len(draws))
    assert abs(floors["mmd_floor"] - draws.mean()) < error, (floors, draws.mean(), error)


def test_gauss1d_ks_and_w1_floors():
    toy = Gaussian1D()
    real = toy.evaluate(toy.sample(2500, torch.Generator().manual_seed(4)))
    # E[KS] of n real samples is about 0.87 / sqrt(n) (Kolmogorov's distribution)
    assert real["ks_floor"] == pytest.approx(0.87 / 50, rel=0.25)
    assert real["ks"] < 2 * real["ks_floor"] and real["w1"] < 2 * real["w1_floor"]
    narrow = toy.evaluate(4 + 1.0 * torch.randn(2500, 1, generator=torch.Generator()))
    assert narrow["ks"] > 3 * narrow["ks_floor"]


def test_the_distances_are_registered_lower_is_better():
    for key in ("val/mmd", "val/ks", "val/w1"):
        assert METRICS[key].goal == "min"
    for key in ("val/mmd_floor", "val/ks_floor", "val/w1_floor"):
        assert METRICS[key].goal is None  # a property of the data, never ranked
