"""G steps per second and peak memory of ganlab's DCGAN against a plain PyTorch loop.

Setting (issue: image GANs, point 8): DCGAN (width 64) on digits at 32x32, batch 64,
non-saturating loss, n_critic 1, Adam 2e-4 (0.5, 0.999). Both loops use the same networks,
the same device-resident digits batches and the same updates. ganlab runs with its default
callbacks (health flags, progress bar, checkpoint at the end, sample grids only at the
end) and the CSV logger; the EMA of G and the sample metrics are off since the plain loop
has neither. Each loop runs
in its own process (peak memory is per process), interleaved ``--repeats`` times; the table
reports medians. On a GPU (``--device cuda``) peak memory is torch's max allocated.

    python benchmarks/dcgan_throughput.py [--steps 300] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from ganlab.train import build, compose_config

WARMUP = 20


def overrides(steps: int, device: str) -> list[str]:
    return [
        "model=dcgan",
        "data=digits",
        "data.image_size=32",
        "data.batch_size=64",
        "loss=nonsaturating",
        "logger=csv",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        "ema=0",  # the plain loop keeps no EMA of G
        "~callbacks.metrics",  # nor sample metrics
        f"steps={steps}",
        f"sample_every={steps}",
        f"ckpt_every={steps}",
    ]


class StepTimer(pl.Callback):
    """Wall time from the end of step WARMUP to the end of the last step."""

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        if module.g_step == WARMUP:
            self.start = time.perf_counter()
        self.end, self.steps = time.perf_counter(), module.g_step - WARMUP


def run_ganlab(steps: int, device: str) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config(overrides(steps, device), run_dir)
        pl.seed_everything(0, verbose=False)
        trainer, module, datamodule = build(cfg)
        timer = StepTimer()
        trainer.callbacks.insert(0, timer)  # before the last step's plots and checkpoint
        trainer.fit(module, datamodule=datamodule)
    return timer.steps / (timer.end - timer.start)


def run_plain(steps: int, device: str, compile: bool = False) -> float:
    """G steps/s of the plain loop; ``compile``: its nets through ``torch.compile``."""
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config(overrides(steps, device), run_dir)
        pl.seed_everything(0, verbose=False)
        _, module, datamodule = build(cfg)
    family = module.family
    g, d = family.generator.to(device), family.discriminator.to(device)
    if compile:
        g.compile(), d.compile()
    factories = module.optimizer_factories
    opt_g, opt_d = factories["g"](g.parameters()), factories["d"](d.parameters())
    datamodule.data.setup("fit")
    batches = datamodule.data.train_dataloader(torch.device(device))  # on the device, as ganlab's
    latent = family.latent.dim
    for step, batch in enumerate(batches):
        if step == WARMUP:
            _sync(device)
            start = time.perf_counter()
        real = (batch[0] if isinstance(batch, (tuple, list)) else batch)[0].to(device)
        n = real.shape[0]
        with torch.no_grad():
            fake = g(torch.randn(n, latent, device=device))
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        g_loss = F.softplus(-d(g(torch.randn(n, latent, device=device)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
    _sync(device)
    return (steps - WARMUP) / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory_mib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(loop: str, steps: int, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    rate = (run_ganlab if loop == "ganlab" else run_plain)(steps, device)
    print(json.dumps({"rate": rate, "peak_mib": peak_memory_mib(device)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=("plain", "ganlab"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.device, args.threads)
    runs: dict[str, list[dict]] = {"plain": [], "ganlab": []}
    for _ in range(args.repeats):
        for loop in runs:
            cmd = [sys.executable, __file__, "--child", loop, *sys.argv[1:]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[loop].append(json.loads(out.strip().splitlines()[-1]))
    print(f"\nDCGAN 32x32 digits, batch 64, {args.device}, {args.threads} threads")
    print(f"{'loop':<10}{'G steps/s':>11}{'ms/step':>9}{'peak MiB':>10}   runs (steps/s)")
    rates = {}
    for loop, results in runs.items():
        rate = rates[loop] = statistics.median(r["rate"] for r in results)
        peak = statistics.median(r["peak_mib"] for r in results)
        each = ", ".join(f"{r['rate']:.2f}" for r in results)
        print(f"{loop:<10}{rate:>11.2f}{1000 / rate:>9.1f}{peak:>10.0f}   {each}")
    print(f"ratio ganlab/plain: {rates['ganlab'] / rates['plain']:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
