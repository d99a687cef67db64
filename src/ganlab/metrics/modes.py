"""Mode coverage of labelled samples (e.g. classifier labels of generated digits).

The protocol of VEEGAN (Srivastava et al. 2017, sec. 5.2) and PacGAN (Lin et al. 2018,
table 2): a pretrained classifier labels each channel of 26,000 generated Stacked MNIST
samples; a mode (of 1,000) is covered when at least one sample carries its label, and the
reverse KL to the uniform distribution over modes measures how evenly they are hit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mode_histogram(labels: Tensor, num_modes: int) -> Tensor:
    """Counts of each label in ``0 .. num_modes - 1``, int64 (num_modes,)."""
    if num_modes < 1:
        raise ValueError(f"num_modes must be >= 1, got {num_modes}")
    if labels.dim() != 1:
        raise ValueError(f"mode_histogram: labels must be (N,), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"mode_histogram: labels must be integers, got {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_modes):
        raise ValueError(
            f"mode_histogram: labels must be in [0, {num_modes}), "
            f"got values in [{labels.min().item()}, {labels.max().item()}]"
        )
    return torch.bincount(labels.long(), minlength=num_modes)


def class_coverage(labels: Tensor, num_modes: int) -> dict:
    """``modes`` (distinct labels present), ``kl`` = KL(p ‖ uniform) = Σ p log(p · num_modes)
    over modes with p > 0 (natural log, as in the VEEGAN and PacGAN tables; inf without
    samples) and ``fractions`` (per-mode fraction p, a list of ``num_modes`` floats)."""
    counts = mode_histogram(labels, num_modes)
    total = counts.sum().item()
    if total == 0:
        return {"modes": 0, "kl": math.inf, "fractions": [0.0] * num_modes}
    p = counts.double() / total  # (num_modes,)
    hit = p[p > 0]
    return {
        "modes": int((counts > 0).sum()),
        "kl": float((hit * (hit * num_modes).log()).sum()),
        "fractions": p.tolist(),
    }
