"""Figures of generated samples for toy data (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from ganlab.data.toy import Gaussian1D, GaussianMixture, ToyDistribution  # noqa: E402


def plot_mixture(samples: Tensor, dist: GaussianMixture, title: str) -> Figure:
    """Scatter of generated samples over the real modes, each ringed at 3 std."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    x = samples.detach().cpu().numpy()
    for mx, my in dist.means.tolist():
        ax.add_patch(plt.Circle((mx, my), 3 * dist.std, fill=False, color="tab:red", lw=0.8))
    ax.scatter(
        dist.means[:, 0],
        dist.means[:, 1],
        s=30,
        marker="+",
        color="tab:red",
        label="real modes (circle: 3 std)",
    )
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    span = float(dist.means.abs().max()) * 1.5 + 6 * dist.std
    ax.set(xlim=(-span, span), ylim=(-span, span), aspect="equal")
    ax.set_title(title, fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_1d(
    samples: Tensor, dist: Gaussian1D, critic: Callable[[Tensor], Tensor], title: str
) -> Figure:
    """The classic figure: real density, generated density and D(x) on one x axis."""
    lo, hi = dist.mean - 5 * dist.std, dist.mean + 5 * dist.std
    x = torch.linspace(lo, hi, 400).unsqueeze(1)  # (400, 1)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(x.squeeze(1), dist.density(x).squeeze(1), color="black", label="real density")
    ax.hist(
        samples.detach().cpu().flatten().numpy(),
        bins=80,
        range=(lo, hi),
        density=True,
        alpha=0.5,
        color="tab:green",
        label="generated density",
    )
    with torch.no_grad():
        d_out = critic(x).cpu().squeeze(1)
    ax_d = ax.twinx()
    ax_d.plot(x.squeeze(1), d_out, color="tab:blue", ls="--", label="D(x) (raw output)")
    ax_d.set_ylabel("D(x)")
    ax.set(xlabel="x", ylabel="density")
    ax.set_title(title, fontsize=9)
    lines = ax.get_legend_handles_labels(), ax_d.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_samples(
    samples: Tensor, dist: ToyDistribution, critic: Callable[[Tensor], Tensor], title: str
) -> Figure | None:
    """The figure for this distribution, or None when there is none for its dimension."""
    if isinstance(dist, Gaussian1D):
        return plot_1d(samples, dist, critic, title)
    if isinstance(dist, GaussianMixture) and dist.dim == 2:
        return plot_mixture(samples, dist, title)
    return None
