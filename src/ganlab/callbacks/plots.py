"""Figures of mode coverage for image data (toy data draws its own: ``ganlab.data.figures``).

Built as bare ``matplotlib.figure.Figure`` objects, never through pyplot: saving them needs
no backend, and pyplot's backend is left to the user (a notebook keeps its inline figures).
"""

from __future__ import annotations

import matplotlib
import torch
from matplotlib.figure import Figure

from ganlab.data.figures import bare_figure as _figure


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
