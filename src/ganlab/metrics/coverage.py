"""Mode coverage of a Gaussian mixture, as the VEEGAN and PacGAN tables define it."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mode_histogram(samples: Tensor, means: Tensor, std: float, threshold: float = 3.0) -> Tensor:
    """Counts of *high-quality* samples per mode, shape (K,).

    Each sample is assigned to its nearest mean; it is high quality when
    ‖x - μ‖ / σ < ``threshold`` (PacGAN code, Lin et al. 2018, sec. 5.1).
    """
    if samples.dim() != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"mode_histogram: samples must be (N, {means.shape[1]}), got {tuple(samples.shape)}"
        )
    dist = torch.cdist(samples.double(), means.double())  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)  # (N,)
    high_quality = nearest_dist < threshold * std
    return torch.bincount(nearest[high_quality], minlength=means.shape[0])


def reverse_kl_to_uniform(counts: Tensor) -> float:
    """KL(p̂ ‖ uniform) of a histogram over K modes; inf when it is empty."""
    total = counts.sum().item()
    if total == 0:
        return math.inf
    p = counts[counts > 0].double() / total
    return float((p * (p * counts.numel()).log()).sum())


def mode_coverage(samples: Tensor, means: Tensor, std: float) -> dict[str, float]:
    """``modes`` covered, ``hq`` (percent of high-quality samples) and ``rkl``."""
    counts = mode_histogram(samples, means, std)
    return {
        "modes": float((counts > 0).sum()),
        "hq": 100.0 * counts.sum().item() / samples.shape[0],
        "rkl": reverse_kl_to_uniform(counts),
    }
