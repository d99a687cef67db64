"""Figures of generated samples for toy data, and of mode coverage for image data.

Built as bare ``matplotlib.figure.Figure`` objects, never through pyplot: saving them needs
no backend, and pyplot's backend is left to the user (a notebook keeps its inline figures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import matplotlib
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import Tensor

if TYPE_CHECKING:  # the distributions import these figures lazily
    from ganlab.data.toy import Gaussian1D, GaussianMixture


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def plot_mixture(samples: Tensor, dist: GaussianMixture, title: str) -> Figure:
    """Scatter of generated samples over the real modes, each ringed at 3 std."""
    fig, ax = _figure(5, 5)
    x = samples.detach().cpu().numpy()
    for mx, my in dist.means.tolist():
        ax.add_patch(Circle((mx, my), 3 * dist.std, fill=False, color="tab:red", lw=0.8))
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
    fig, ax = _figure(7, 4)
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


def plot_mode_fractions(fractions: list[float], title: str) -> Figure:
    """How often each mode is generated, against uniform. 10 classes: a bar per class with
    the uniform share dashed. 1,000 stacked triples (label 100 d0 + 10 d1 + d2): a 10 x 100
    map of the fraction relative to uniform (capped at 2), row d0, column 10 d1 + d2; missed
    modes red."""
    n = len(fractions)
    p = torch.tensor(fractions, dtype=torch.float64)
    if n <= 10:
        fig, ax = _figure(5, 3)
        ax.bar(range(n), p.numpy(), color="tab:blue")
        for c in (p == 0).nonzero().flatten().tolist():
            ax.text(c, 0, "missed", color="tab:red", ha="center", va="bottom", rotation=90)
        ax.axhline(1 / n, color="black", ls="--", lw=0.8, label="uniform")
        ax.set(xlabel="class (domain classifier)", ylabel="fraction of samples", xticks=range(n))
        ax.legend(loc="upper right", fontsize=8)
    else:
        rows = 10 if n % 10 == 0 else 1
        ratio = (p * n).reshape(rows, n // rows).numpy()  # 1 = uniform share
        cmap = matplotlib.colormaps["viridis"].with_extremes(under="red")
        fig, ax = _figure(10, 2.6)
        image = ax.imshow(
            ratio, cmap=cmap, vmin=1e-9, vmax=2.0, aspect="auto", interpolation="nearest"
        )
        fig.colorbar(image, ax=ax, extend="both", label="fraction / uniform (red: missed)")
        ax.set(xlabel="10 d1 + d2", ylabel="d0", yticks=range(rows))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
