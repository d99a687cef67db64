"""Where a 2-D mixture run's MMD² comes from: its modes' offsets or their width.

For a checkpoint's final G (its EMA, or ``--raw`` for the trained weights themselves), on the
run's 2,500 evaluation samples: HQ, mode spread, how far each mode's high-quality samples sit
from the true centre on average (in the modes' std), and MMD² over its floor three times: as
logged, with each mode's HQ samples shifted onto the true centre, and shifted then scaled to
the data's width (mode spread 1). What the repairs remove is what that defect cost.

    python benchmarks/mode_offsets.py RUN/checkpoints/last.ckpt [more.ckpt ...] [--raw]
"""

from __future__ import annotations

import argparse

import torch
from hydra.utils import instantiate
from torch import Tensor

from ganlab.checkpoints import load_trained
from ganlab.data.toy import GaussianMixture
from ganlab.metrics.coverage import mode_spread

SAMPLES = 2500  # the evaluation's sample size (PacGAN protocol)


def repaired(x: Tensor, dist: GaussianMixture) -> tuple[Tensor, Tensor, Tensor]:
    """The per-mode offsets (std) of x's HQ samples, x with each mode's HQ samples moved onto
    the true centre, and that also scaled around each centre to the data's width."""
    dmin, idx = torch.cdist(x, dist.means).min(dim=1)  # (N,)
    hq = dmin < 3 * dist.std
    modes = [(centre, hq & (idx == k)) for k, centre in enumerate(dist.means)]
    modes = [(centre, sel) for centre, sel in modes if sel.any()]
    offsets, centred = [], x.clone()
    for centre, sel in modes:
        mean = x[sel].mean(dim=0)
        offsets.append((mean - centre).norm() / dist.std)
        centred[sel] = x[sel] - mean + centre
    spread = mode_spread(centred, dist.means, dist.std)
    widened = centred.clone()
    for centre, sel in modes:
        widened[sel] = centre + (centred[sel] - centre) / spread
    return torch.stack(offsets), centred, widened


def report(path: str, ema: bool) -> str:
    """One line of figures for the checkpoint at ``path``."""
    trained = load_trained(path, ema=ema)
    dist = instantiate(trained.config.data.distribution)
    family = trained.family
    with torch.no_grad():
        x = family.generate(SAMPLES, z=family.fixed_z(SAMPLES, trained.device)).float().cpu()
    logged = dist.evaluate(x)
    offsets, centred, widened = repaired(x, dist)
    ratios = [dist.evaluate(s)["mmd"] / logged["mmd_floor"] for s in (x, centred, widened)]
    return (
        f"{path} ({'EMA' if ema else 'raw'}): HQ {logged['hq']:.1f} %, mode spread "
        f"{logged['mode_spread']:.2f}, centre offset mean {offsets.mean():.2f} / max "
        f"{offsets.max():.2f} std; MMD² / floor {ratios[0]:.1f}, recentred {ratios[1]:.1f}, "
        f"recentred and widened {ratios[2]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--raw", action="store_true", help="the trained G, not its EMA")
    args = parser.parse_args()
    for path in args.checkpoints:
        print(report(path, ema=not args.raw), flush=True)


if __name__ == "__main__":
    main()
