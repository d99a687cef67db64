"""A slow seeded check that the remedies work: with G's learning rate 50x D's, the plain GAN
collapses on ring8 within 1,000 steps, and packing D's input (PacGAN, Lin et al. 2018) or
unrolling D (Metz et al. 2017) keeps the samples spread over more modes at the same budget."""

from __future__ import annotations

import pytest

from conftest import run_train

# G much faster than D: G jumps to wherever D currently rates fakes highest, all at once
COLLAPSING = ["steps=1000", "eval_every=1000", "ema=0", "optim.g.lr=5e-3", "optim.d.lr=1e-4",
              "trainer=cpu", "threads=1", "seed=0"]  # fmt: skip


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return run_train(tmp_path_factory.mktemp("plain"), *COLLAPSING)["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("remedy", [["model.pack=4"],
                                    ["family=unrolled", "family.unroll_steps=5"]])  # fmt: skip
def test_a_remedy_covers_more_ring_modes_where_the_plain_gan_collapses(plain, remedy, tmp_path):
    assert plain["val/spread"] < 0.25 and plain["val/modes"] <= 1, plain  # collapsed
    fixed = run_train(tmp_path, *COLLAPSING, *remedy)["metrics"]
    assert fixed["val/spread"] > 0.8, fixed  # spread like the ring (1.0), not a point
    assert fixed["val/modes"] >= plain["val/modes"] + 3, (plain, fixed)
