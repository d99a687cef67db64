"""The family contract (``ganlab.families.base``): every phase carries its own loss (no
family chooses a loss by the phase's name), the data's batches per step come from the
phases, and the protocols callbacks and commands type against tell the families apart."""

from __future__ import annotations

import functools
import inspect
import re

import pytest

import ganlab.families as families
from ganlab.families import (
    CanCritic,
    CanSample,
    CanTranslate,
    CycleGAN,
    LatentGAN,
    Pix2Pix,
    UnrolledGAN,
)
from ganlab.losses import LeastSquaresLoss, NonSaturatingLoss
from ganlab.nets import MLP


def latent(cls=LatentGAN, **kwargs):
    nets = dict(generator=functools.partial(MLP, 2, 2), discriminator=functools.partial(MLP, 2, 1))
    return cls(**nets, loss=NonSaturatingLoss(), latent_dim=2, **kwargs)


FAMILIES = {
    "latent": lambda: latent(n_critic=3),
    "unrolled": lambda: latent(UnrolledGAN, n_critic=2, unroll_steps=1),
    "pix2pix": lambda: Pix2Pix(None, None, NonSaturatingLoss()),
    "cyclegan": lambda: CycleGAN(None, None, LeastSquaresLoss()),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_phase_carries_its_loss_and_d_phases_their_after_step(name):
    family = FAMILIES[name]()
    phases = {p.name: p for p in family.phases()}
    assert sorted(phases) == ["d", "g"]
    assert all(callable(p.loss) for p in phases.values())
    assert phases["d"].after == family.after_d_update  # the regularizers' work (clipping)
    assert family.batches_per_step == {"latent": 3, "unrolled": 2}.get(name, 1)


def test_no_family_chooses_a_loss_by_the_phase_name():
    for module in (families.base, families.latent, families.unrolled, families.pix2pix,
                   families.cyclegan):  # fmt: skip
        assert not re.search(r"phase\.name\s*[!=]=", inspect.getsource(module)), module


@pytest.mark.parametrize(
    ("name", "abilities"),
    [("latent", {CanSample, CanCritic}), ("unrolled", {CanSample, CanCritic}),
     ("pix2pix", {CanTranslate}), ("cyclegan", {CanTranslate})],
)  # fmt: skip
def test_protocols_tell_what_a_family_can_do(name, abilities):
    family = FAMILIES[name]()
    assert {p for p in (CanSample, CanCritic, CanTranslate) if isinstance(family, p)} == abilities
