"""G steps per second of ganlab against a plain PyTorch loop doing the same updates.

Setting (issue: foundation, point 12): ring8, PacGAN-size MLPs (G 4x400 BatchNorm+ReLU,
D 3 maxout layers of 200 units x 5 pieces), batch 100, non-saturating loss, n_critic 1,
Adam. ganlab runs with its default callbacks (health flags, progress bar, checkpoints at
the end) and the CSV logger writing the per-step diagnostics every 10 steps; the sample
evaluation and the EMA of G are off, since the plain loop has neither. Both run on one
CPU thread, interleaved ``--repeats`` times; the table reports the median of each.

    python benchmarks/throughput.py [--steps 1500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from ganlab.train import build, compose_config

WARMUP = 100
OVERRIDES = [
    "experiment=ring8_protocol",
    "logger=csv",
    "trainer=cpu",
    "n_critic=1",
    "ema=0",  # the plain loop keeps no EMA of G
    "~callbacks.evaluate",
]


class StepTimer(pl.Callback):
    """Wall time from the end of step WARMUP to the end of the last step."""

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.g_step == WARMUP:
            self.start = time.perf_counter()
        self.end, self.steps = time.perf_counter(), module.g_step - WARMUP


def run_ganlab(steps: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config([*OVERRIDES, f"steps={steps}"], run_dir)
        pl.seed_everything(0, verbose=False)
        trainer, module, datamodule = build(cfg)
        timer = StepTimer()
        trainer.callbacks.insert(0, timer)  # before the last step's plots and checkpoint
        trainer.fit(module, datamodule=datamodule)
    return timer.steps / (timer.end - timer.start)


def run_plain(steps: int, compile: bool = False) -> float:
    """G steps/s of the plain loop; ``compile``: its nets through ``torch.compile``."""
    cfg = compose_config([*OVERRIDES, f"steps={steps}"])
    torch.manual_seed(0)
    g, d = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    if compile:
        g.compile(), d.compile()
    opt_g = instantiate(cfg.optim.g)(g.parameters())
    opt_d = instantiate(cfg.optim.d)(d.parameters())
    dist = instantiate(cfg.data.distribution)
    gen = torch.Generator().manual_seed(0)
    batch = cfg.data.batch_size
    for step in range(steps):
        if step == WARMUP:
            start = time.perf_counter()
        real = dist.sample(batch, gen)
        with torch.no_grad():
            fake = g(torch.randn(batch, cfg.latent.dim))
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        g_loss = F.softplus(-d(g(torch.randn(batch, cfg.latent.dim)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
    return (steps - WARMUP) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    plain, ganlab = [], []
    for _ in range(args.repeats):
        plain.append(run_plain(args.steps))
        ganlab.append(run_ganlab(args.steps))
    p, g = statistics.median(plain), statistics.median(ganlab)
    print(f"\n{'loop':<12}{'G steps/s':>12}{'ms/step':>10}   runs")
    print(f"{'plain':<12}{p:>12.1f}{1000 / p:>10.2f}   {', '.join(f'{x:.1f}' for x in plain)}")
    print(f"{'ganlab':<12}{g:>12.1f}{1000 / g:>10.2f}   {', '.join(f'{x:.1f}' for x in ganlab)}")
    print(f"ratio ganlab/plain: {g / p:.3f}  (target >= 0.93)")


if __name__ == "__main__":
    main()
