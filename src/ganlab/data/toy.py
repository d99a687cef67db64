"""Toy data: the 1-D Gaussian and the 2-D Gaussian mixtures of the mode-collapse literature.

Batches are drawn fresh from the distribution on the training device, as tensors: no
dataset, no worker processes, no per-sample Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from ganlab.data.base import CPU, DataModule
from ganlab.data.spec import DataSpec
from ganlab.metrics.coverage import mode_coverage
from ganlab.metrics.distances import floor, kernel_mean, ks_statistic, mmd2, normal_cdf
from ganlab.rng import stream_seed


class ToyDistribution:
    """A distribution we can sample from and score generated samples against."""

    dim: int
    #: the distinct modes that mode coverage counts (0: not a mixture)
    n_modes: int = 0
    #: the keys of ``evaluate``'s result
    metric_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._floors: dict[int, dict[str, float]] = {}  # sample size -> real-vs-real floors

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` samples (n, dim) on the generator's device."""
        raise NotImplementedError

    def evaluate(self, samples: Tensor) -> dict[str, float]:
        """Metrics of generated samples (n, dim), keyed without prefix."""
        raise NotImplementedError

    @property
    def std_per_dim(self) -> Tensor:
        """Standard deviation of the real data along each axis (for the spread ratio)."""
        raise NotImplementedError

    def floors(self, n: int) -> dict[str, float]:
        """The distances' real-vs-real floors for samples of size ``n`` (computed once)."""
        if n not in self._floors:
            self._floors[n] = self._real_floors(n)
        return self._floors[n]

    def _real_floors(self, n: int) -> dict[str, float]:
        return {}

    def spread(self, samples: Tensor) -> float:
        """Sample std / real std, averaged over axes: ~1 healthy, ~0 collapsed."""
        return float((samples.double().std(dim=0).cpu() / self.std_per_dim).mean())

    def figure(self, samples: Tensor, critic: Callable[[Tensor], Tensor], title: str) -> Any:
        """A matplotlib figure of ``samples`` against this distribution (None: no figure for
        its dimension); ``critic`` gives D's raw output for the figures that show it."""
        return None


class GaussianMixture(ToyDistribution):
    """Equal-weight mixture of isotropic Gaussians with a common std."""

    metric_names = ("modes", "hq", "rkl", "mode_spread", "spread", "mmd", "mmd_floor")

    def __init__(self, means: Sequence[Sequence[float]] | Tensor, std: float) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float32)  # (K, D)
        if self.means.dim() != 2 or len(self.means) < 1:
            raise ValueError(
                f"GaussianMixture: means must be (K, D), got {tuple(self.means.shape)}"
            )
        if std <= 0:
            raise ValueError(f"GaussianMixture: std must be > 0, got {std}")
        super().__init__()
        self._references: dict[int, tuple[Tensor, float]] = {}
        self.std = float(std)
        self.dim = self.means.shape[1]
        self._device_means: dict[torch.device, Tensor] = {}

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        device = generator.device
        means = self._device_means.setdefault(device, self.means.to(device))
        idx = torch.randint(self.n_modes, (n,), generator=generator, device=device)
        noise = torch.randn(n, self.dim, generator=generator, device=device)
        return means[idx] + self.std * noise  # (n, D)

    @property
    def std_per_dim(self) -> Tensor:
        return (self.means.double().var(dim=0, unbiased=False) + self.std**2).sqrt()

    def figure(self, samples: Tensor, critic: Callable[[Tensor], Tensor], title: str) -> Any:
        """A 2-D mixture's scatter over its modes (no figure in other dimensions)."""
        if self.dim != 2:
            return None
        from ganlab.data.figures import plot_mixture

        return plot_mixture(samples, self.means, self.std, title)

    def evaluate(self, samples: Tensor) -> dict[str, float]:
        metrics = mode_coverage(samples, self.means.to(samples.device), self.std)
        metrics["spread"] = self.spread(samples)
        real, real_self = self._reference(len(samples))
        metrics["mmd"] = mmd2(samples.cpu(), real, self.std, real_self)
        return metrics | self.floors(len(samples))

    def _reference(self, n: int) -> tuple[Tensor, float]:
        """The fixed real sample of size ``n`` that generated samples are compared with, and
        its own kernel mean (MMD's bandwidth: the modes' std)."""
        if n not in self._references:
            real = self.sample(n, torch.Generator().manual_seed(1))
            self._references[n] = real, kernel_mean(real, real, self.std)
        return self._references[n]

    def _real_floors(self, n: int) -> dict[str, float]:
        real, real_self = self._reference(n)
        return {"mmd_floor": self._expected_mmd2(n, real, real_self)}

    def _expected_mmd2(self, n: int, real: Tensor, real_self: float) -> float:
        """E[MMD²(X, real)] over real samples X of size n: the floor, exactly (no draws).

        A Gaussian kernel of bandwidth h against N(μ, σ²I) in D dims integrates to
        (h² / (h² + σ²))^(D/2) exp(-|μ - r|² / (2 (h² + σ²))), and against two such
        Gaussians to the same with 2σ²; so E k(x, x') and E k(x, r) are sums over modes."""
        h2, s2, dim = self.std**2, self.std**2, self.dim
        means = self.means.double()

        def smoothed(a: Tensor, b: Tensor, var: float) -> Tensor:  # (len(a), len(b))
            return (h2 / (h2 + var)) ** (dim / 2) * torch.exp(
                -torch.cdist(a, b).pow(2) / (2 * (h2 + var))
            )

        xx = smoothed(means, means, 2 * s2).mean()  # E k(X, X'), X and X' independent
        xr = smoothed(real.double(), means, s2).mean()  # mean over r of E k(X, r)
        return float(1 / n + (1 - 1 / n) * xx + real_self - 2 * xr)

    def __repr__(self) -> str:
        return f"GaussianMixture(modes={self.n_modes}, dim={self.dim}, std={self.std})"


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """Modes at radius·(cos 2πk/K, sin 2πk/K), k = 0..K-1 (PacGAN's ring of 8).

    ``np.linspace(0, 2π, 8)`` would repeat the first mode; k/K does not.
    """
    angles = [2 * math.pi * k / n_modes for k in range(n_modes)]
    return GaussianMixture([[radius * math.cos(a), radius * math.sin(a)] for a in angles], std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """``side`` x ``side`` modes centred on 0, ``spacing`` apart ({-4,-2,0,2,4}² by default)."""
    coords = [spacing * (i - (side - 1) / 2) for i in range(side)]
    return GaussianMixture([[x, y] for x in coords for y in coords], std)


class Gaussian1D(ToyDistribution):
    """The classic 1-D toy: real data N(mean, std²)."""

    dim = 1
    metric_names = ("mean", "std", "w1", "ks", "spread", "w1_floor", "ks_floor")

    def __init__(self, mean: float = 4.0, std: float = 1.25) -> None:
        if std <= 0:
            raise ValueError(f"Gaussian1D: std must be > 0, got {std}")
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        noise = torch.randn(n, 1, generator=generator, device=generator.device)
        return self.mean + self.std * noise  # (n, 1)

    @property
    def std_per_dim(self) -> Tensor:
        return torch.tensor([self.std], dtype=torch.float64)

    def density(self, x: Tensor) -> Tensor:
        return torch.exp(-0.5 * ((x - self.mean) / self.std) ** 2) / (
            self.std * math.sqrt(2 * math.pi)
        )

    def figure(self, samples: Tensor, critic: Callable[[Tensor], Tensor], title: str) -> Any:
        """The classic figure: real density, generated density, D(x)."""
        from ganlab.data.figures import plot_1d

        return plot_1d(samples, self.mean, self.std, self.density, critic, title)

    def evaluate(self, samples: Tensor) -> dict[str, float]:
        x = samples.double().flatten().cpu()
        metrics = {
            "mean": float(x.mean()),
            "std": float(x.std()),
            "w1": self._w1(x),
            "ks": ks_statistic(x, normal_cdf(self.mean, self.std)),
            "spread": self.spread(samples),
        }
        return metrics | self.floors(len(x))

    def _w1(self, x: Tensor) -> float:
        """1-Wasserstein distance to the real distribution, from the quantile functions."""
        q = (torch.arange(len(x), dtype=torch.float64) + 0.5) / len(x)
        real_q = self.mean + self.std * math.sqrt(2) * torch.special.erfinv(2 * q - 1)
        return float((x.sort().values - real_q).abs().mean())

    def _real_floors(self, n: int) -> dict[str, float]:
        cdf = normal_cdf(self.mean, self.std)
        return {
            "w1_floor": floor(lambda g: self._w1(self.sample(n, g).double().flatten())),
            "ks_floor": floor(lambda g: ks_statistic(self.sample(n, g), cdf)),
        }

    def __repr__(self) -> str:
        return f"Gaussian1D(mean={self.mean}, std={self.std})"


class RandomBatches:
    """``length`` steps of real data, each (per_step, batch_size, dim), drawn on ``device``.

    The batch at position p is drawn from a generator seeded with (seed, p): a resumed run
    (on any number of ranks, each with its own seed) draws exactly the batches an
    uninterrupted one would, and the state to checkpoint is just the position.
    """

    def __init__(
        self,
        distribution: ToyDistribution,
        batch_size: int,
        per_step: int,
        length: int,
        seed: int,
        device: torch.device | str,
    ) -> None:
        self.distribution = distribution
        self.batch_size, self.per_step, self.length = batch_size, per_step, length
        self.seed, self.position = seed, 0
        self.generator = torch.Generator(device=device)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Tensor]:
        n = self.per_step * self.batch_size
        while self.position < self.length:
            self.generator.manual_seed(stream_seed(self.seed, self.position))
            self.position += 1
            batch = self.distribution.sample(n, self.generator)
            yield batch.view(self.per_step, self.batch_size, -1)  # (per_step, B, D)

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]


class ToyDataModule(DataModule):
    """Serves fresh samples of a toy distribution, one chunk of ``per_step`` real batches per
    training step (one per D update; ``DataModule.serve``).

    Args:
        distribution: what to sample.
        dim: data dimension, checked against the distribution (models read it from config).
        batch_size, seed: see ``DataModule``.
    """

    kind, labelled = "points", False

    def __init__(
        self,
        distribution: ToyDistribution,
        dim: int,
        batch_size: int = 100,
        seed: int = 0,
    ) -> None:
        if dim != distribution.dim:
            raise ValueError(
                f"data.dim={dim} but {distribution!r} has dimension {distribution.dim}"
            )
        super().__init__(batch_size, seed)
        self.distribution, self.dim = distribution, dim

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.kind, {"x": (self.dim,)}, modes=self.distribution.n_modes)

    def train_dataloader(self, device: torch.device = CPU, rank: int = 0) -> RandomBatches:
        steps, per_step = self.served()
        return RandomBatches(
            self.distribution,
            self.batch_size,
            per_step,
            steps,
            seed=stream_seed(self.seed, rank),
            device=device,
        )
