"""KID (Bińkowski et al. 2018) as torch-fidelity computes it, with the real subsets' kernel
sums kept between evaluations.

``kid_features_to_metric`` draws ``subsets`` pairs of index sets from one seeded RandomState
and computes three polynomial kernels per pair. The real indices depend only on the seed and
the sample counts, so the real-real term of each subset is the same at every evaluation of
the same count: it is computed once and kept (a third of KID's cost). The arithmetic is
torch-fidelity's own (``kernel_poly``, the unbiased ``mmd2``), so the values are identical.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor
from torch_fidelity.metric_kid import kernel_poly

DEFAULTS = {"kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None, "kid_kernel_poly_coef0": 1}


def _off_diagonal_sum(k: np.ndarray) -> np.floating:
    """Σ_{i≠j} k_ij, summed as torch-fidelity's ``mmd2`` does (row sums less the diagonal)."""
    return (k.sum(axis=1) - np.diagonal(k)).sum()


def kid(
    fake: Tensor,
    real: Tensor,
    subsets: int,
    subset_size: int,
    seed: int,
    memo: dict | None = None,
) -> dict[str, float]:
    """``kid_mean`` and ``kid_std`` over ``subsets`` subsets of ``subset_size`` of each of the
    fake (N, F) and real (M, F) features; ``memo`` keeps the real-real kernel sums (pass the
    same dict with the same real features, e.g. ``RealStats.memo``)."""
    f1, f2 = fake.cpu().numpy(), real.cpu().numpy()
    m = subset_size
    key = ("kid", len(f1), len(f2), subsets, m, seed)
    real_sums = None if memo is None else memo.get(key)
    rng = np.random.RandomState(seed)
    mmds, fresh = np.zeros(subsets), []
    for i in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y_idx = rng.choice(len(f2), m, replace=False)
        if real_sums is None:
            y = f2[y_idx]
            fresh.append(_off_diagonal_sum(kernel_poly(y, y, **DEFAULTS)))
            kt_yy = fresh[-1]
        else:
            y, kt_yy = f2[y_idx], real_sums[i]
        kt_xx = _off_diagonal_sum(kernel_poly(x, x, **DEFAULTS))
        k_xy = kernel_poly(x, y, **DEFAULTS).sum(axis=0).sum()
        mmds[i] = (kt_xx + kt_yy) / (m * (m - 1)) - 2 * k_xy / (m * m)  # unbiased MMD²
    if memo is not None and real_sums is None:
        memo[key] = fresh
    return {"kid_mean": float(np.mean(mmds)), "kid_std": float(np.std(mmds))}
