"""FID/KID/IS/PR: parity with torch-fidelity, known values, extractors.

Cached real statistics and Inception weight errors: test_fidelity_cache.py. The
``random_inception_weights`` fixture is in conftest.py.
"""

from __future__ import annotations

import io
import sys

import pytest
import torch
import torch.nn.functional as F
import torch_fidelity
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor
from torchvision.transforms.functional import gaussian_blur

from ganlab.metrics.extractors import ClassifierExtractor, InceptionExtractor, to_uint8_rgb
from ganlab.metrics.fidelity import RealStats, fidelity_metrics

# torch-fidelity's names for our keys
TF_KEYS = {
    "fid": "frechet_inception_distance",
    "kid_mean": "kernel_inception_distance_mean",
    "kid_std": "kernel_inception_distance_std",
    "is_mean": "inception_score_mean",
    "is_std": "inception_score_std",
    "precision": "precision",
    "recall": "recall",
}


class TinyCNN(nn.Module):
    """Stand-in for a domain classifier: features(x) (B, 64), forward(x) logits (B, 10)."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8, 16, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(64, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)  # (B, 64)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 10)


class U8Images(Dataset):
    """What torch-fidelity takes as input1/input2: uint8 (3, H, W) tensors."""

    def __init__(self, images: Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def blocky(n: int, size: int = 16, cells: int = 8, seed: int = 0) -> Tensor:
    """Images in [-1, 1] with sharp edges: random colours on a cells x cells grid."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, cells, cells, generator=g) * 2 - 1
    return F.interpolate(low, size=size, mode="nearest")  # (n, 3, size, size)


def u8(n: int, size: int, seed: int, cells: int = 4) -> Tensor:
    return to_uint8_rgb(blocky(n, size, cells, seed))


def from_u8(images: Tensor) -> Tensor:
    return images.float() / 127.5 - 1


#: what ganlab gives beyond torch-fidelity (checked against the prdc package instead)
BEYOND_TF = {"density", "coverage"}


def max_rel_diff(ours: dict[str, float], theirs: dict[str, float]) -> float:
    """The largest relative difference over the values torch-fidelity also computes."""
    return max(
        abs(ours[k] - theirs[TF_KEYS[k]]) / max(abs(theirs[TF_KEYS[k]]), 1e-12)
        for k in ours
        if k not in BEYOND_TF
    )


def tf_metrics(fake: Tensor, real: Tensor, **kwargs) -> dict[str, float]:
    return torch_fidelity.calculate_metrics(
        input1=U8Images(fake),
        input2=U8Images(real),
        cuda=False,
        fid=True,
        kid=True,
        isc=True,
        prc=True,
        cache=False,
        save_cpu_ram=True,  # no DataLoader workers
        verbose=False,
        **kwargs,
    )


@pytest.fixture
def tiny_cnn_registered():
    torch.manual_seed(0)
    net = TinyCNN().eval()

    class Wrapped(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.net = net

        @staticmethod
        def get_provided_features_list():
            return ("features", "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "logits" if metric == "isc" else "features"

        @staticmethod
        def can_be_compiled():
            return False

        def forward(self, x):
            x = from_u8(x)
            out = {"features": self.net.features(x), "logits": self.net(x)}
            return tuple(out[k] for k in self.features_list)

    name = "ganlab-tiny-cnn"
    FEATURE_EXTRACTORS_REGISTRY.pop(name, None)
    register_feature_extractor(name, Wrapped)
    yield name, net
    FEATURE_EXTRACTORS_REGISTRY.pop(name, None)


def test_parity_with_torch_fidelity_random_cnn(tiny_cnn_registered):
    name, net = tiny_cnn_registered
    fake, real = u8(120, 16, seed=1), u8(150, 16, seed=2, cells=8)
    settings = dict(kid_subsets=20, kid_subset_size=50, is_splits=4, pr_neighborhood=3, seed=7)
    theirs = tf_metrics(
        fake,
        real,
        feature_extractor=name,
        batch_size=64,
        kid_subsets=20,
        kid_subset_size=50,
        isc_splits=4,
        prc_neighborhood=3,
        rng_seed=7,
    )
    extractor = ClassifierExtractor(net, "tiny", batch_size=64)
    fake_out, real_out = extractor(from_u8(fake)), extractor(from_u8(real))
    ours = fidelity_metrics(fake_out, real_out, **settings)
    assert set(ours) == {*TF_KEYS, *BEYOND_TF}
    print("max relative difference, random CNN:", max_rel_diff(ours, theirs))
    assert max_rel_diff(ours, theirs) <= 1e-3, (ours, theirs)
    # cached statistics give the same values as features
    stats = RealStats.from_features(real_out["features"])
    assert fidelity_metrics(fake_out, stats, **settings) == ours


@pytest.mark.slow
def test_parity_with_torch_fidelity_inception(random_inception_weights):
    # InceptionV3 runs at 299x299: ~1-7 images/s on a CPU, so 20 vs 20 (80 forward passes)
    fake, real = u8(20, 32, seed=1), u8(20, 32, seed=2, cells=8)
    theirs = tf_metrics(
        fake,
        real,
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=random_inception_weights,
        kid_subsets=10,
        kid_subset_size=15,
        isc_splits=2,
        rng_seed=3,
    )
    extractor = InceptionExtractor(random_inception_weights)
    fake_out, real_out = extractor(from_u8(fake)), extractor(from_u8(real))
    assert fake_out["features"].shape == (20, 2048) and fake_out["logits"].shape == (20, 1008)
    settings = dict(kid_subsets=10, kid_subset_size=15, is_splits=2, seed=3)
    ours = fidelity_metrics(fake_out, real_out, **settings)
    print("max relative difference, InceptionV3:", max_rel_diff(ours, theirs), ours)
    assert max_rel_diff(ours, theirs) <= 1e-3, (ours, theirs)


def test_uint8_conversion_matches_torch_fidelity_input():
    images = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    assert torch.equal(to_uint8_rgb(from_u8(images)), images)
    gray = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8)
    assert torch.equal(to_uint8_rgb(from_u8(gray)), gray.expand(-1, 3, -1, -1))
    extremes = to_uint8_rgb(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]).view(1, 5, 1, 1))
    assert extremes.flatten().tolist() == [0, 0, 128, 255, 255]


def features_of(images: Tensor) -> dict[str, Tensor]:
    torch.manual_seed(0)
    return ClassifierExtractor(TinyCNN(), "tiny")(images)


def test_fid_of_a_set_with_itself_is_zero():
    real = features_of(blocky(256, seed=1))
    other = features_of(blocky(256, seed=1) + 0.3 * torch.randn(256, 3, 16, 16))
    typical = fidelity_metrics(other, real, metrics=["fid"])["fid"]
    assert typical > 0
    assert abs(fidelity_metrics(real, real, metrics=["fid"])["fid"]) < 1e-6 * typical


@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_fid_grows_with_degradation(kind):
    real = features_of(blocky(256, seed=1))
    fake = blocky(256, seed=2)
    g = torch.Generator().manual_seed(3)
    fids = []
    for level in (0.0, 0.1, 0.25, 0.5, 1.0):
        if kind == "noise":
            degraded = fake + level * torch.randn(fake.shape, generator=g)
        else:  # Gaussian blur of std 0 (none) to 4 pixels
            degraded = gaussian_blur(fake, 17, 4 * level) if level else fake
        fids.append(fidelity_metrics(features_of(degraded), real, metrics=["fid"])["fid"])
    assert (torch.tensor(fids).diff() > 0).all(), fids


def test_kid_subset_size_is_clamped_to_the_smaller_set():
    fake, real = features_of(blocky(30, seed=1)), features_of(blocky(60, seed=2))
    ours = fidelity_metrics(fake, real, metrics=["kid"], kid_subsets=5, seed=1)
    theirs = kid_features_to_metric(
        fake["features"], real["features"], kid_subsets=5, kid_subset_size=30, rng_seed=1
    )
    assert ours["kid_mean"] == theirs["kernel_inception_distance_mean"]


def test_bad_requests_are_named():
    out = features_of(blocky(20, seed=1))
    with pytest.raises(ValueError, match="accepted: fid, kid, is, pr"):
        fidelity_metrics(out, out, metrics=["fid", "ssim"])
    with pytest.raises(ValueError, match="needs fake\\['logits'\\]"):
        fidelity_metrics({"features": out["features"]}, out, metrics=["is"])
    with pytest.raises(ValueError, match="same extractor"):
        fidelity_metrics(out, {"features": out["features"][:, :10]})
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ClassifierExtractor(TinyCNN(), "tiny")(torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match="features\\(x\\)"):
        ClassifierExtractor(nn.Linear(2, 2), "tiny")


def test_classifier_extractor_batches_without_gradients():
    torch.manual_seed(0)
    net = TinyCNN(channels=1).train()
    images = blocky(50, seed=1)[:, :1]
    whole = ClassifierExtractor(net, "tiny", batch_size=64)(images)
    parts = ClassifierExtractor(net, "tiny", batch_size=7)(images)
    torch.testing.assert_close(whole, parts)
    assert whole["features"].shape == (50, 64) and whole["logits"].shape == (50, 10)
    assert not whole["features"].requires_grad and whole["features"].dtype == torch.float32
    assert net.training  # mode restored


def test_feature_extraction_shows_progress_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    images = blocky(50, seed=1)[:, :1]
    for stream, batch_size, shown in ((Terminal(), 7, True), (io.StringIO(), 7, False),
                                      (Terminal(), 64, False)):  # fmt: skip
        monkeypatch.setattr(sys, "stderr", stream)
        ClassifierExtractor(TinyCNN(channels=1), "tiny", batch_size=batch_size)(images)
        assert ("metrics: tiny" in stream.getvalue() and "/50 " in stream.getvalue()) == shown


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_classifier_extractor_on_cuda_matches_cpu():
    torch.manual_seed(0)
    net = TinyCNN()
    images = blocky(50, seed=1)
    on_cpu = ClassifierExtractor(net, "tiny", batch_size=16)(images)
    on_gpu = ClassifierExtractor(net.cuda(), "tiny", batch_size=16)(images)  # images stay on CPU
    assert on_gpu["features"].device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-4)
    again = ClassifierExtractor(net, "tiny", batch_size=16)(images.cuda())
    torch.testing.assert_close(again, on_gpu)


def test_kid_keeps_the_real_terms_and_equals_torch_fidelity():
    """The real-real kernel sums are computed at the first call and kept in RealStats.memo:
    later calls (other fake features, same count) give torch-fidelity's values exactly."""
    gen = torch.Generator().manual_seed(3)
    real = RealStats.from_features(torch.randn(300, 16, generator=gen))
    for shift in (0.0, 0.5):  # the first call fills the memo, the second uses it
        fake = {"features": torch.randn(250, 16, generator=gen) + shift}
        got = fidelity_metrics(fake, real, ("kid",), kid_subsets=7, kid_subset_size=100)
        want = kid_features_to_metric(fake["features"], real.features, kid_subsets=7,
                                      kid_subset_size=100, rng_seed=0, verbose=False)  # fmt: skip
        assert got["kid_mean"] == want["kernel_inception_distance_mean"]
        assert got["kid_std"] == want["kernel_inception_distance_std"]
        assert len(real.memo) == 1


@pytest.mark.parametrize("batch", [10_000, 64])  # torch-fidelity's full path; in parts
def test_precision_recall_keeps_the_real_radii_and_equals_torch_fidelity(batch):
    """The real features' k-NN radii are computed at the first call and kept: later calls
    (other fake features) give torch-fidelity's values exactly, on both its code paths."""
    from ganlab.metrics.pr import precision_recall

    gen = torch.Generator().manual_seed(4)
    real, memo = torch.randn(300, 16, generator=gen), {}
    for shift in (0.0, 0.3, 3.0):  # the first call fills the memo, the others use it
        fake = torch.randn(250, 16, generator=gen) + shift
        got = precision_recall(fake, real, 3, batch, memo)
        want = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=batch,
                                      save_cpu_ram=batch < 300, verbose=False)  # fmt: skip
        assert (got["precision"], got["recall"]) == (want["precision"], want["recall"])
        assert len(memo) == 1
    assert got["precision"] < 0.5  # the far shift is told apart: the test can fail
    real_stats = RealStats.from_features(real)
    fidelity_metrics({"features": fake}, real_stats, ("pr",))
    assert list(real_stats.memo) == [("pr", 300, 3, 10_000)]


@pytest.mark.parametrize("batch", [10_000, 64])  # the full path; in parts
def test_density_and_coverage_equal_the_prdc_package(batch, capsys):
    """Density and coverage (Naeem et al. 2020) equal the reference ``prdc`` package's on the
    same features (float64, so both sides' distances agree to the last bit that matters),
    on both code paths; precision and recall still equal torch-fidelity's."""
    from prdc import compute_prdc

    from ganlab.metrics.pr import precision_recall

    gen = torch.Generator().manual_seed(5)
    real = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    seen = set()
    for shift, scale in ((0.0, 1.0), (0.3, 0.5), (0.0, 2.0), (3.0, 1.0)):
        fake = torch.randn(250, 16, generator=gen, dtype=torch.float64) * scale + shift
        got = precision_recall(fake, real, 5, batch)
        want = compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
        assert got["density"] == pytest.approx(want["density"], abs=1e-12)
        assert got["coverage"] == pytest.approx(want["coverage"], abs=1e-12)
        seen.add((round(got["density"], 2), round(got["coverage"], 2)))
    assert len(seen) == 4  # the shifts and scales move both: the test can fail
    capsys.readouterr()  # prdc prints its sample counts


def test_one_classifier_pass_gives_features_logits_and_labels():
    from ganlab.metrics.classifier import DomainClassifier, predict
    from ganlab.metrics.scorer import ChannelwiseClassifier

    net = DomainClassifier(16).eval()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    stacked = ChannelwiseClassifier(net).eval()  # as the scorer holds it
    out = ClassifierExtractor(stacked, name="c")(x)
    assert_close = torch.testing.assert_close
    assert_close(out["features"], stacked.features(x))
    assert_close(out["logits"], stacked(x))
    digits = [predict(net, x[:, c : c + 1]) for c in range(3)]
    assert out["labels"].tolist() == (digits[0] * 100 + digits[1] * 10 + digits[2]).tolist()
