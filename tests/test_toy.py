"""Toy distributions and the VEEGAN/PacGAN mode-coverage metric."""

import math

import numpy as np
import torch
from torch.testing import assert_close

from ganlab.data.toy import Gaussian1D, RandomBatches, ToyDataModule, grid, ring
from ganlab.metrics.coverage import mode_coverage, reverse_kl_to_uniform


def test_ring_has_8_distinct_modes_on_the_unit_circle():
    dist = ring()
    assert dist.means.shape == (8, 2)
    assert_close(dist.means.norm(dim=1), torch.ones(8))
    assert torch.cdist(dist.means, dist.means).add(torch.eye(8)).min() > 0.7
    # the trap the references warn about: linspace with its end point repeats a mode
    trap = np.linspace(0, 2 * np.pi, 8)
    assert len({(round(np.cos(a), 6), round(np.sin(a), 6)) for a in trap}) == 7


def test_grid_means():
    dist = grid()
    assert sorted({x for x, _ in dist.means.tolist()}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert dist.means.shape == (25, 2) and dist.std == 0.05


def test_real_samples_cover_every_mode_with_high_quality():
    for dist in (ring(), grid()):
        samples = dist.sample(2500, torch.Generator().manual_seed(0))
        m = dist.evaluate(samples)
        assert m["modes"] == dist.n_modes
        assert m["hq"] > 98.5  # P(‖x-μ‖ < 3σ) in 2-D is 1 - e^{-4.5} = 98.9 %
        assert m["rkl"] < 0.02
        assert abs(m["spread"] - 1) < 0.05


def test_collapse_to_one_mode():
    dist = ring()
    samples = dist.means[3].expand(2500, 2).clone()
    m = mode_coverage(samples, dist.means, dist.std)
    # every sample sits on its mode's centre: no spread around it
    assert m == {"modes": 1.0, "hq": 100.0, "rkl": math.log(8), "mode_spread": 0.0}


def test_high_quality_threshold_is_three_std():
    dist = ring()
    inside = dist.means[:1] + torch.tensor([[2.9 * dist.std, 0.0]])
    outside = dist.means[:1] + torch.tensor([[3.1 * dist.std, 0.0]])
    assert mode_coverage(inside, dist.means, dist.std)["hq"] == 100.0
    far = mode_coverage(outside, dist.means, dist.std)
    assert far["hq"] == 0.0 and far["modes"] == 0.0 and far["rkl"] == math.inf


def test_reverse_kl_to_uniform():
    assert reverse_kl_to_uniform(torch.tensor([5, 5, 5, 5])) == 0.0
    assert_close(reverse_kl_to_uniform(torch.tensor([1, 1, 0, 0])), math.log(2))


def test_gauss1d_metrics_of_real_samples():
    dist = Gaussian1D(4.0, 1.25)
    m = dist.evaluate(dist.sample(20000, torch.Generator().manual_seed(0)))
    assert abs(m["mean"] - 4.0) < 0.03 and abs(m["std"] - 1.25) < 0.03 and m["w1"] < 0.03
    shifted = dist.evaluate(dist.sample(20000, torch.Generator().manual_seed(0)) + 1.0)
    assert abs(shifted["w1"] - 1.0) < 0.03


def test_random_batches_shape_and_exact_restart():
    batches = RandomBatches(ring(), batch_size=16, per_step=5, length=6, seed=3, device="cpu")
    it = iter(batches)
    first = [next(it) for _ in range(2)]
    assert first[0].shape == (5, 16, 2)
    state = batches.state_dict()
    rest = list(it)
    assert len(rest) == 4
    again = RandomBatches(ring(), batch_size=16, per_step=5, length=6, seed=3, device="cpu")
    again.load_state_dict(state)
    for a, b in zip(rest, again, strict=True):
        assert torch.equal(a, b)


def test_datamodule_rejects_bad_arguments():
    import pytest

    with pytest.raises(ValueError, match="dimension"):
        ToyDataModule(ring(), dim=3)
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        ToyDataModule(ring(), dim=2).serve(1, 0)
