"""Cached real statistics, one-line errors for missing Inception weights, and log keys."""

from __future__ import annotations

import logging
import urllib.error

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
from torch import Tensor

from ganlab.errors import UserError
from ganlab.metrics.extractors import INCEPTION_FILE, InceptionExtractor
from ganlab.metrics.fidelity import (
    real_stats,
    stats_key,
    stats_path,
)


def images(n: int) -> Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n)) * 2 - 1


class CountingExtractor:
    name = "stub"
    fingerprint = "0"

    def __init__(self):
        self.calls = 0

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        self.calls += 1
        return {"features": images.flatten(1)[:, :12]}


KEY = {"data": "digits", "split": "train", "size": 16, "n": 64}


def test_real_stats_are_cached(tmp_path):
    extractor, loads = CountingExtractor(), []

    def load_images():
        loads.append(1)
        return images(64)

    first = real_stats(extractor, load_images, KEY, cache_dir=tmp_path)
    second = real_stats(extractor, load_images, KEY, cache_dir=tmp_path)
    assert (extractor.calls, len(loads)) == (1, 1)
    assert not first.cached and second.cached
    for name in ("features", "mu", "sigma"):
        torch.testing.assert_close(getattr(first, name), getattr(second, name), rtol=0, atol=0)
    assert first.key == second.key and first.path == second.path
    assert list((tmp_path / "fidelity").iterdir()) == [stats_path(first.key, tmp_path)]

    other = real_stats(extractor, load_images, {**KEY, "split": "test"}, cache_dir=tmp_path)
    assert not other.cached and other.path != first.path
    assert len(list((tmp_path / "fidelity").iterdir())) == 2


def test_cache_root_defaults_to_ganlab_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    stats = real_stats(CountingExtractor(), lambda: images(16), KEY)
    assert stats.path.startswith(str(tmp_path / "fidelity"))


def test_corrupt_cache_is_recomputed(tmp_path, caplog):
    extractor = CountingExtractor()
    first = real_stats(extractor, lambda: images(64), KEY, cache_dir=tmp_path)
    with open(first.path, "wb") as f:
        f.write(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="ganlab.metrics.fidelity"):
        again = real_stats(extractor, lambda: images(64), KEY, cache_dir=tmp_path)
    assert extractor.calls == 2 and not again.cached
    assert "recomputing real statistics" in caplog.text
    torch.testing.assert_close(again.sigma, first.sigma)
    assert real_stats(extractor, lambda: images(64), KEY, cache_dir=tmp_path).cached


def test_cache_key_names_the_extractor_and_rejects_objects():
    key = stats_key(CountingExtractor(), KEY)
    assert key["extractor"] == "stub" and key["fingerprint"] == "0" and "version" in key
    with pytest.raises(ValueError, match="key values"):
        stats_key(CountingExtractor(), {"data": object()})


def assert_one_line_user_error(err: pytest.ExceptionInfo) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert "https://github.com/toshas/torch-fidelity/releases/download/" in message
    assert f"metrics.inception_weights=/path/to/{INCEPTION_FILE}" in message


def test_each_digits_split_has_its_own_real_statistics():
    """Another hold-out holds other images in each split, so it is cached under another key;
    the default split keeps the plain name (and the caches already made with it)."""
    from ganlab.data.images import Digits, StackedDigits

    assert Digits().cache_key == "Digits"
    keys = {Digits(holdout=h).cache_key for h in (0.2, 0.3, 0.5)}
    keys |= {Digits(holdout=0.3, fraction=0.5).cache_key, Digits(fraction=0.5).cache_key}
    assert len(keys) == 5
    assert StackedDigits(holdout=0.3).cache_key != StackedDigits().cache_key


def test_missing_inception_weights_file_is_one_line(tmp_path):
    with pytest.raises(UserError) as err:
        InceptionExtractor(str(tmp_path / "nope.pth"))
    assert_one_line_user_error(err)
    assert "nope.pth" in str(err.value)


def test_failed_inception_download_is_one_line(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    with pytest.raises(UserError) as err:
        InceptionExtractor()
    assert_one_line_user_error(err)
    assert "URLError" in str(err.value)


def test_corrupt_inception_weights_are_one_line(tmp_path):
    path = tmp_path / INCEPTION_FILE
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(UserError) as err:
        InceptionExtractor(str(path))
    assert_one_line_user_error(err)
