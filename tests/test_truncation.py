"""The truncation trick (``ganlab.latent.Truncation``, ``python -m ganlab.sample
truncation=PSI``): resampled z obey the bound, z moved toward the mean shrink by psi, psi = 1
(mean) and no truncation are today's z and samples, bad values are one line, and the sample
command writes its grid."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from conftest import run_train
from ganlab.latent import Latent, Truncation, eval_seed
from ganlab.sample import SampleOptions, main, sample


def stream(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("psi", [0.25, 0.5, 1.0, 2.0])
def test_resampled_z_obey_the_bound_and_keep_what_was_inside(psi):
    latent = Latent(16)
    plain = latent.draw(2000, stream())
    z = latent.draw(2000, stream(), Truncation(psi, "resample"))
    assert z.shape == plain.shape and (z.abs() <= psi).all()
    inside = plain.abs() <= psi
    assert_close(z[inside], plain[inside], rtol=0, atol=0)  # only the outside is redrawn
    assert (z[~inside] != plain[~inside]).all()
    # redrawn until inside: the truncated normal, whose variance is below the bound's uniform
    assert 0 < float(z.var()) < psi**2 / 3


def test_mean_truncation_shrinks_toward_the_latents_mean():
    for dist, mean in (("normal", 0.0), ("uniform", 0.5)):
        latent = Latent(8, dist)
        plain = latent.draw(100, stream())
        z = latent.draw(100, stream(), Truncation(0.7, "mean"))
        assert_close(z, mean + 0.7 * (plain - mean))
    assert Latent(4, "uniform").truncation_mode(Truncation(0.5)) == "mean"  # auto
    assert Latent(4, "normal").truncation_mode(Truncation(0.5)) == "resample"


def test_psi_one_toward_the_mean_and_no_truncation_are_todays_z():
    for dist in ("normal", "uniform"):
        latent = Latent(8, dist)
        today = getattr(torch, "randn" if dist == "normal" else "rand")(
            (64, 8), generator=stream(eval_seed(3))
        )
        assert torch.equal(latent.fixed(64, seed=3), today)
        assert torch.equal(latent.fixed(64, seed=3, truncation=Truncation(1.0, "mean")), today)


def test_truncated_fixed_z_are_reproducible():
    latent, trunc = Latent(8), Truncation(0.5)
    assert torch.equal(latent.fixed(32, 7, truncation=trunc), latent.fixed(32, 7, truncation=trunc))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Truncation(0.0), "truncation must be a number > 0"),
        (lambda: Truncation(float("nan")), "truncation must be a number > 0"),
        (lambda: Truncation(0.5, "clip"), "truncation_mode must be one of auto, resample, mean"),
        (
            lambda: Latent(4, "uniform").truncation_mode(Truncation(0.5, "resample")),
            "this model's z is uniform: use truncation_mode=mean",
        ),
    ],
)
def test_bad_truncation_is_a_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A DCGAN smoke run on digits (tiny nets)."""
    root = tmp_path_factory.mktemp("trunc")
    run_train(root, "model=dcgan", "data=digits", "data.image_size=16", "trainer=smoke",
              "model.generator.width=8", "model.discriminator.width=8", "~callbacks.metrics",
              "threads=1")  # fmt: skip
    return root / "checkpoints" / "last.ckpt"


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def opts(**kw) -> SampleOptions:
    return SampleOptions(**{k: str(v) if k in ("ckpt", "out") else v for k, v in kw.items()})


def test_sample_with_truncation_writes_its_grid(ckpt, tmp_path):
    today = sample(opts(ckpt=ckpt, out=tmp_path / "today.png", n=16))
    same = sample(opts(ckpt=ckpt, out=tmp_path / "one.png", n=16, truncation=1.0,
                       truncation_mode="mean"))  # fmt: skip
    np.testing.assert_array_equal(pixels(same), pixels(today))
    out = sample(opts(ckpt=ckpt, out=tmp_path / "half.png", n=16, truncation=0.5))
    again = sample(opts(ckpt=ckpt, out=tmp_path / "again.png", n=16, truncation=0.5))
    assert Image.open(out).size == Image.open(today).size
    np.testing.assert_array_equal(pixels(out), pixels(again))  # seeded: reproducible
    assert not np.array_equal(pixels(out), pixels(today))
    walk = sample(opts(ckpt=ckpt, out=tmp_path / "walk.png", interpolate=2, steps=4,
                       truncation=0.5))  # fmt: skip
    assert Image.open(walk).size == (4 * 18 + 2, 2 * 18 + 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["truncation=-0.5"], "truncation must be a number > 0"),
        (["truncation=abc"], "truncation: Value 'abc'"),
        (["truncation=0.5", "truncation_mode=clip"], "truncation_mode must be one of auto, "),
        (["truncation_mode=mean"], "truncation_mode=mean needs truncation=PSI"),
        (["truncation=0.5", "arithmetic=label:1-label:2"], "truncation= applies to samples"),
    ],
)
def test_bad_truncation_is_one_error_line(argv, message, ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt={ckpt}", f"out={tmp_path / 'g.png'}", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
