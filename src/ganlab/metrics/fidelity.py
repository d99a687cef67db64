"""FID, KID, IS and precision/recall from extracted features, by torch-fidelity's own functions.

FID: Heusel et al. 2017; KID: Bińkowski et al. 2018; IS: Salimans et al. 2016;
precision/recall: Kynkäänniemi et al. 2019. Features come from an extractor in
``ganlab.metrics.extractors``; real statistics are computed once and cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric

from ganlab.collectives import gather_shares, rank, share_slice, world_size
from ganlab.io import atomic_path
from ganlab.metrics.extractors import Extractor
from ganlab.metrics.kid import kid
from ganlab.metrics.pr import precision_recall

log = logging.getLogger(__name__)

VERSION = 1  # bump when the cached file's content or the features change meaning
METRICS = ("fid", "kid", "is", "pr")
PRC_BATCH = 10_000  # torch-fidelity's prc_batch_size; above it, distances are computed in parts


@dataclass
class RealStats:
    """Real-data features (B, F) float32 on the CPU, for KID and precision/recall, and FID's
    mean ``mu`` (F,) and covariance ``sigma`` (F, F)."""

    features: Tensor
    mu: Tensor
    sigma: Tensor
    key: dict[str, Any] = field(default_factory=dict)
    cached: bool = False  # loaded from the cache file rather than computed
    path: str = ""
    extracted: int = 0  # real images this process ran through the extractor
    memo: dict = field(default_factory=dict, repr=False)  # real-side terms kept in memory

    @classmethod
    def from_features(cls, features: Tensor, key: dict[str, Any] | None = None) -> RealStats:
        features = _as_features(features, "real")
        stats = fid_features_to_statistics(features)
        mu, sigma = torch.from_numpy(stats["mu"]), torch.from_numpy(stats["sigma"])
        return cls(features, mu, sigma, dict(key or {}))

    def fid_statistics(self) -> dict[str, Any]:
        """In the form ``fid_statistics_to_metric`` takes (numpy arrays)."""
        return {"mu": self.mu.numpy(), "sigma": self.sigma.numpy()}


def _as_features(features: Tensor, which: str) -> Tensor:
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(
            f"{which} features must be (N, F) with N >= 2, got {tuple(features.shape)}"
        )
    # float32 as torch-fidelity's extractors give; FID's mu and sigma dtypes must match
    return features.detach().float().cpu()


def kid_subset(requested: int, n_fake: int, n_real: int) -> int:
    """KID's subset size: ``requested`` clamped to the smaller sample count."""
    size = min(requested, n_fake, n_real)
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 samples, got {size}")
    return size


def _fid(fake: Tensor, real: RealStats) -> dict[str, float]:
    fake_stats = fid_features_to_statistics(fake)
    out = fid_statistics_to_metric(fake_stats, real.fid_statistics(), verbose=False)
    return {"fid": out["frechet_inception_distance"]}


def _kid(
    fake: Tensor, real: Tensor, subsets: int, subset_size: int, seed: int, memo: dict | None
) -> dict:
    size = kid_subset(subset_size, len(fake), len(real))
    return kid(fake, real, subsets, size, seed, memo)


def _is(logits: Tensor | None, splits: int, seed: int) -> dict[str, float]:
    if logits is None:
        raise ValueError("metric 'is' needs fake['logits'] (B, K); this extractor gave none")
    logits = _as_features(logits, "fake logits")
    if not 1 <= splits <= len(logits):
        raise ValueError(f"is_splits must be in [1, {len(logits)}] (the fake count), got {splits}")
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return {"is_mean": out["inception_score_mean"], "is_std": out["inception_score_std"]}


def _pr(fake: Tensor, real: Tensor, neighborhood: int, memo: dict | None) -> dict[str, float]:
    if not 1 <= neighborhood < min(len(fake), len(real)):
        raise ValueError(
            f"pr_neighborhood must be in [1, {min(len(fake), len(real)) - 1}], got {neighborhood}"
        )
    return precision_recall(fake, real, neighborhood, PRC_BATCH, memo)


def fidelity_metrics(
    fake: dict[str, Tensor],
    real: dict[str, Tensor] | RealStats,
    metrics: Iterable[str] = METRICS,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    pr_neighborhood: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Metrics of ``fake`` features against ``real`` ones (an extractor's output, or RealStats).

    Keys, for the ``metrics`` asked: fid; kid_mean, kid_std (polynomial kernel, subsets of
    ``min(kid_subset_size, n_fake, n_real)`` samples); is_mean, is_std (on fake logits, shuffled
    by ``seed``); precision, recall (k-NN manifolds, k = ``pr_neighborhood``). Same values as
    ``torch_fidelity.calculate_metrics`` on the same features with ``rng_seed=seed``.
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown or metrics}; accepted: {', '.join(METRICS)}")
    fake_features = _as_features(fake["features"], "fake")
    real_features = real.features if isinstance(real, RealStats) else real["features"]
    if fake_features.shape[1] != real_features.shape[1]:
        raise ValueError(
            f"fake features have {fake_features.shape[1]} dims, real {real_features.shape[1]}: "
            "were they made by the same extractor?"
        )
    out: dict[str, float] = {}
    if "fid" in metrics:
        stats = real if isinstance(real, RealStats) else RealStats.from_features(real_features)
        out.update(_fid(fake_features, stats))
    memo = real.memo if isinstance(real, RealStats) else None
    real_features = _as_features(real_features, "real")
    if "kid" in metrics:
        out.update(_kid(fake_features, real_features, kid_subsets, kid_subset_size, seed, memo))
    if "is" in metrics:
        out.update(_is(fake.get("logits"), is_splits, seed))
    if "pr" in metrics:
        out.update(_pr(fake_features, real_features, pr_neighborhood, memo))
    return out


def feature_spread(fake: Tensor, real_sigma: Tensor) -> float:
    """sqrt(trace Σ_fake / trace Σ_real) of the feature covariances FID compares: how widely
    the samples spread in feature space against the real images (1: as widely; a collapsed
    G approaches 0). Needs no classifier, so it works on any data set."""
    fake_trace = fake.double().var(dim=0).sum()  # unbiased, as FID's covariance
    return float((fake_trace / real_sigma.double().diagonal().sum()).sqrt())


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$GANLAB_CACHE``, else ``~/.cache/ganlab``."""
    root = cache_dir or os.environ.get("GANLAB_CACHE") or "~/.cache/ganlab"
    return Path(root).expanduser()


def stats_key(extractor: Extractor, key: dict[str, Any]) -> dict[str, Any]:
    """The cache key: the caller's (data set, split, size, count) plus the extractor and VERSION."""
    full = {**key, "extractor": extractor.name, "fingerprint": extractor.fingerprint}
    full["version"] = VERSION
    try:
        json.dumps(full, sort_keys=True)
    except TypeError as err:
        raise ValueError(
            f"real_stats key values must be str, int, float, bool or None: {err}"
        ) from err
    return full


def stats_path(full_key: dict[str, Any], cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache root>/fidelity/<sha1 of the sorted key>.pt``."""
    digest = hashlib.sha1(json.dumps(full_key, sort_keys=True).encode()).hexdigest()
    return cache_root(cache_dir) / "fidelity" / f"{digest}.pt"


def _load(path: Path, full_key: dict[str, Any]) -> RealStats | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        stats = RealStats(blob["features"], blob["mu"], blob["sigma"], blob["key"], True, str(path))
        same = json.dumps(stats.key, sort_keys=True) == json.dumps(full_key, sort_keys=True)
        dims = stats.features.shape[1:] == stats.mu.shape == stats.sigma.shape[:1]
        if not (same and dims and stats.features.dim() == 2):
            raise ValueError("its key or shapes do not match")
    except Exception as err:  # any unreadable file is recomputed, never trusted
        log.warning("recomputing real statistics: cannot use %s (%s)", path, err)
        return None
    return stats


def _save_atomic(stats: RealStats, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    blob = {"features": stats.features, "mu": stats.mu, "sigma": stats.sigma, "key": stats.key}
    try:
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)
    except OSError as err:  # a read-only cache costs time, not the run
        log.warning("could not cache real statistics at %s (%s)", path, err)


def real_stats(
    extractor: Extractor,
    images_fn: Callable[[], Tensor],
    key: dict[str, Any],
    cache_dir: str | os.PathLike | None = None,
    across_ranks: bool = False,
) -> RealStats:
    """Real statistics for ``key`` (data set, split, image size, sample count), cached.

    ``images_fn()`` returns the real images in [-1, 1] and is called only on a cache miss.
    ``.cached`` tells whether the result came from the file; a corrupt file is recomputed.
    ``across_ranks``: a collective call on every rank of the process group; on a miss (on any
    rank) each rank extracts the features of its share of the images, the features are
    gathered, and rank 0 writes the file. ``.extracted`` counts this rank's images.
    """
    full_key = stats_key(extractor, key)
    path = stats_path(full_key, cache_dir)
    stats = _load(path, full_key) if path.exists() else None
    world = world_size() if across_ranks else 1
    if world > 1:  # all ranks agree, before anyone writes, to compute or not
        missed = torch.tensor([float(stats is None)])
        missed = missed.cuda() if torch.distributed.get_backend() == "nccl" else missed
        torch.distributed.all_reduce(missed)
        stats = None if missed.item() else stats
    if stats is not None:
        return stats
    images = images_fn()
    mine = images[share_slice(len(images), world, rank() if world > 1 else 0)]
    features = gather_shares({"features": extractor(mine)["features"]}, len(images))["features"]
    stats = RealStats.from_features(features, full_key)
    stats.path, stats.extracted = str(path), len(mine)
    if world == 1 or rank() == 0:
        _save_atomic(stats, path)
    return stats
