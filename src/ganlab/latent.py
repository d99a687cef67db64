"""The latent space of a generator: how z is drawn, the fixed evaluation z, and walks.

One place knows the latent: training draws z from the runner's step-seeded stream, and
sample grids, metrics and the sample command all take the fixed evaluation z from here,
so every picture of a run, and of the runs of a sweep with the same seed, shows the same z.
Walks (slerp for Gaussian z, lerp for uniform z), the mean z of groups of samples and walks
along a direction serve the grids, the interpolation strips and latent arithmetic
(``ganlab.arithmetic``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

LATENT_DISTS = ("normal", "uniform")


def eval_seed(seed: int) -> int:
    """Seed of the evaluation z (grids, metrics, the sample command): one stream per run seed."""
    return seed + 1


@dataclass(frozen=True)
class Latent:
    """z of ``dim`` dimensions from ``dist``: ``normal`` N(0, I) or ``uniform`` U[0, 1)."""

    dim: int
    dist: str = "normal"

    def __post_init__(self) -> None:
        if self.dist not in LATENT_DISTS:
            raise ValueError(f"latent_dist must be one of {LATENT_DISTS}, got {self.dist!r}")
        if self.dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.dim}")

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` vectors (n, dim) on the generator's device."""
        if self.dist == "uniform":
            return torch.rand((n, self.dim), generator=generator, device=generator.device)
        return torch.randn((n, self.dim), generator=generator, device=generator.device)

    def interpolate(self, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        """Walks between rows of ``a`` and ``b`` at fractions ``t``: (N, T, D); spherical for
        Gaussian z, linear for uniform z."""
        return lerp(a, b, t) if self.dist == "uniform" else slerp(a, b, t)

    def fixed(self, n: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
        """The evaluation z of a run with seed ``seed``: the same ``n`` vectors at every call
        and on every rank (the first m of them for any m < n)."""
        generator = torch.Generator(device=device).manual_seed(eval_seed(seed))
        return self.draw(n, generator)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (N, D) at fractions ``t``
    (T,): (N, T, D). Gaussian z concentrate near a sphere, where linear midpoints are
    atypically short (White 2016, "Sampling generative networks")."""
    a_unit = a / a.norm(dim=1, keepdim=True)
    b_unit = b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(dim=1).clamp(-1.0, 1.0))[:, None, None]  # (N,1,1)
    t = t[None, :, None]  # (1, T, 1)
    so = torch.sin(omega)
    linear = (1 - t) * a[:, None] + t * b[:, None]
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / (
        so.clamp_min(1e-7)
    )
    return torch.where(so.abs() < 1e-6, linear, spherical)  # (N, T, D)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation between rows of ``a`` and ``b`` (N, D) at fractions ``t`` (T,):
    (N, T, D) (for uniform z, whose space is a box)."""
    t = t[None, :, None]  # (1, T, 1)
    return (1 - t) * a[:, None] + t * b[:, None]


def group_means(z: Tensor, groups: Sequence[Tensor]) -> Tensor:
    """The mean z of each group of rows of ``z`` (N, D), each group an index tensor: (G, D).
    Averaging a few samples' z gives stable arithmetic where single samples do not (Radford
    et al. 2016, sec. 6.3.2)."""
    for i, group in enumerate(groups):
        if group.numel() == 0:
            raise ValueError(f"group_means: group {i} is empty")
    return torch.stack([z[group].mean(dim=0) for group in groups])  # (G, D)


def walk(start: Tensor, direction: Tensor, t: Tensor) -> Tensor:
    """``start`` (N, D) moved along ``direction`` (D,) by the amounts ``t`` (T,): (N, T, D)."""
    return start[:, None] + t[None, :, None] * direction  # (N, T, D)
