"""The latent space of a generator: how z is drawn, the fixed evaluation z, and walks.

One place knows the latent: training draws z from the runner's step-seeded stream, and
sample grids, metrics and the sample command all take the fixed evaluation z from here,
so every picture of a run, and of the runs of a sweep with the same seed, shows the same z.
The truncation trick (``Truncation``) is applied where z is drawn, for any command.
Walks (slerp for Gaussian z, lerp for uniform z), the mean z of groups of samples and walks
along a direction serve the grids, the interpolation strips and latent arithmetic
(``ganlab.arithmetic``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

LATENT_DISTS = ("normal", "uniform")
#: how z is truncated: ``resample`` (Gaussian z: BigGAN), ``mean`` (toward the mean:
#: StyleGAN), ``auto`` (resample for Gaussian z, mean for uniform z)
TRUNCATION_MODES = ("auto", "resample", "mean")


@dataclass(frozen=True)
class Truncation:
    """The truncation trick: fidelity for variety, by drawing z nearer the latent's centre.

    Args:
        psi: ``resample``: the bound |z_i| <= psi (BigGAN's threshold); ``mean``: the factor
            toward the mean, z̄ + psi (z - z̄) (StyleGAN's psi; 1 = none, 0 = the mean).
        mode: ``resample`` (Gaussian z: every coordinate beyond psi is redrawn until it is
            inside, Brock et al. 2019, sec. 3.1), ``mean`` (any z: the "truncation trick in
            W" of Karras et al. 2019, StyleGAN, here in z space), or ``auto``: resample for
            Gaussian z, mean for uniform z.
    """

    psi: float
    mode: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in TRUNCATION_MODES:
            raise ValueError(
                f"truncation_mode must be one of {', '.join(TRUNCATION_MODES)}, got {self.mode!r}"
            )
        if not (self.psi > 0 and math.isfinite(self.psi)):
            raise ValueError(
                f"truncation must be a number > 0 (resample: the bound on |z_i|; mean: the "
                f"factor toward the mean z, 1 = none), got {self.psi}"
            )


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

    def draw(
        self, n: int, generator: torch.Generator, truncation: Truncation | None = None
    ) -> Tensor:
        """``n`` vectors (n, dim) on the generator's device, truncated when asked (its
        re-draws come from the same stream, after the n vectors: reproducible)."""
        if self.dist == "uniform":
            z = torch.rand((n, self.dim), generator=generator, device=generator.device)
        else:
            z = torch.randn((n, self.dim), generator=generator, device=generator.device)
        return z if truncation is None else self.truncate(z, truncation, generator)

    @property
    def mean(self) -> float:
        """E[z_i]: 0 for N(0, 1), 0.5 for U[0, 1)."""
        return 0.5 if self.dist == "uniform" else 0.0

    def truncation_mode(self, truncation: Truncation) -> str:
        """The mode ``truncation`` takes for this latent (``auto`` resolved); ``ValueError``
        for ``resample`` of a z that is not Gaussian."""
        if truncation.mode == "auto":
            return "resample" if self.dist == "normal" else "mean"
        if truncation.mode == "resample" and self.dist != "normal":
            raise ValueError(
                f"truncation_mode=resample redraws Gaussian z beyond a bound, and this model's "
                f"z is {self.dist}: use truncation_mode=mean"
            )
        return truncation.mode

    def truncate(self, z: Tensor, truncation: Truncation, generator: torch.Generator) -> Tensor:
        """``z`` (n, dim) truncated: each coordinate with |z_i| > psi redrawn from
        ``generator`` until inside (``resample``; Brock et al. 2019, sec. 3.1), or moved
        toward the mean, z̄ + psi (z - z̄) (``mean``; Karras et al. 2019, StyleGAN)."""
        psi = truncation.psi
        if self.truncation_mode(truncation) == "mean":
            return z if psi == 1 else self.mean + psi * (z - self.mean)
        z = z.clone()
        outside = z.abs() > psi
        while bool(outside.any()):  # a host sync per round; P(inside) = erf(psi / sqrt 2)
            redrawn = torch.randn(int(outside.sum()), generator=generator, device=z.device)
            z[outside] = redrawn.to(z.dtype)
            outside = z.abs() > psi
        return z

    def interpolate(self, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        """Walks between rows of ``a`` and ``b`` at fractions ``t``: (N, T, D); spherical for
        Gaussian z, linear for uniform z."""
        return lerp(a, b, t) if self.dist == "uniform" else slerp(a, b, t)

    def fixed(
        self,
        n: int,
        seed: int,
        device: torch.device | str = "cpu",
        truncation: Truncation | None = None,
    ) -> Tensor:
        """The evaluation z of a run with seed ``seed``: the same ``n`` vectors at every call
        and on every rank (the first m of them for any m < n, untruncated), truncated when
        asked (the same for the same n)."""
        generator = torch.Generator(device=device).manual_seed(eval_seed(seed))
        return self.draw(n, generator, truncation)


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
