"""Figures of toy data: generated samples against the real distribution (a 2-D mixture's
modes; the 1-D Gaussian's density and D(x)).

The distributions (``ganlab.data.toy``) draw their own figures from here, and the callbacks
save what they draw: this module imports neither. Built as bare
``matplotlib.figure.Figure`` objects, never through pyplot: saving them needs no backend,
and pyplot's backend is left to the user (a notebook keeps its inline figures).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import Tensor


def bare_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of ``width`` x ``height`` inches with one axes, outside pyplot."""
    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def plot_mixture(samples: Tensor, means: Tensor, std: float, title: str) -> Figure:
    """Scatter of generated samples over the real modes (``means`` (K, 2), each of ``std``),
    each ringed at 3 std."""
    fig, ax = bare_figure(5, 5)
    x = samples.detach().cpu().numpy()
    for mx, my in means.tolist():
        ax.add_patch(Circle((mx, my), 3 * std, fill=False, color="tab:red", lw=0.8))
    ax.scatter(
        means[:, 0],
        means[:, 1],
        s=30,
        marker="+",
        color="tab:red",
        label="real modes (circle: 3 std)",
    )
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    span = float(means.abs().max()) * 1.5 + 6 * std
    ax.set(xlim=(-span, span), ylim=(-span, span), aspect="equal")
    ax.set_title(title, fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_1d(
    samples: Tensor,
    mean: float,
    std: float,
    density: Callable[[Tensor], Tensor],
    critic: Callable[[Tensor], Tensor],
    title: str,
) -> Figure:
    """The classic figure: the real density (``density`` of N(``mean``, ``std``²)), the
    generated density and D(x) on one x axis."""
    lo, hi = mean - 5 * std, mean + 5 * std
    x = torch.linspace(lo, hi, 400).unsqueeze(1)  # (400, 1)
    fig, ax = bare_figure(7, 4)
    ax.plot(x.squeeze(1), density(x).squeeze(1), color="black", label="real density")
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
