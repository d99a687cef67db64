"""Eager and compiled (``compile=true``) ganlab against a plain eager PyTorch loop.

For the MLP toy (ring8, PacGAN-size MLPs, batch 100), DCGAN on digits (32 px, width 64,
batch 64) and Pix2Pix on edges -> digits (32 px, width 32, batch 32): G steps per second
after a warm-up of each loop, the compile time (the compiled run's extra time before its
steady state), and the break-even run length (steps after which compiling has paid for
itself), and the same plain loop with its nets compiled (what compiling can give on this
device, whatever wraps the step). Each loop runs in its own process, one after the other,
``--repeats`` times; the table gives medians. ganlab keeps its default callbacks, without
sample evaluation or EMA (the plain loops have neither).

    python benchmarks/compile.py [--only mlp dcgan pix2pix] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))  # the plain loops of the throughput benchmarks
import dcgan_throughput  # noqa: E402
import throughput  # noqa: E402

from ganlab.train import build, compose_config  # noqa: E402

SETTINGS = {
    "mlp": (throughput.OVERRIDES, 1500, 100),
    "dcgan": (dcgan_throughput.overrides(0, "cpu")[:-3], 200, 20),
    "pix2pix": (
        ["experiment=pix2pix_edges2digits", "logger=csv", "ema=0", "~callbacks.translation"],
        120,
        15,
    ),
}  # fmt: skip  (overrides, steps, warm-up steps)


class Timer(pl.Callback):
    """Seconds from the start of fit to step ``warmup`` and from there to the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_start(self, trainer, module) -> None:
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if module.g_step == self.warmup:
            self.t_warm = now
        self.t_end, self.steps = now, module.g_step - self.warmup


def run_ganlab(setting: str, compiled: bool, device: str) -> dict:
    overrides, steps, warmup = SETTINGS[setting]
    trainer_choice = "trainer=gpu" if device == "cuda" else "trainer=cpu"
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config([*overrides, trainer_choice, f"steps={steps}",
                              f"sample_every={steps}", f"ckpt_every={steps}",
                              f"compile={str(compiled).lower()}",
                              f"threads={torch.get_num_threads()}"], run_dir)  # fmt: skip
        pl.seed_everything(0, verbose=False)
        trainer, module, datamodule = build(cfg)
        timer = Timer(warmup)
        trainer.callbacks.insert(0, timer)  # before the last step's plots and checkpoint
        trainer.fit(module, datamodule=datamodule)
    return {"rate": timer.steps / (timer.t_end - timer.t_warm), "warm": timer.t_warm - timer.t0}


def run_plain(setting: str, device: str, compile: bool) -> dict:
    if setting == "mlp":
        return {"rate": throughput.run_plain(SETTINGS["mlp"][1], compile)}
    if setting == "dcgan":
        return {"rate": dcgan_throughput.run_plain(SETTINGS["dcgan"][1], device, compile)}
    return {"rate": plain_pix2pix(device, compile)}


def plain_pix2pix(device: str, compile: bool = False) -> float:
    """Pix2Pix's updates written out: D on (input, target) vs (input, G(input)), halved; G's
    cGAN loss + 100 L1; Adam 2e-4 (0.5, 0.999); the same nets and batches as ganlab's."""
    overrides, steps, warmup = SETTINGS["pix2pix"]
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config([*overrides, f"steps={steps}"], run_dir)
        pl.seed_everything(0, verbose=False)
        _, module, datamodule = build(cfg)
    g, d = module.family.generator.to(device), module.family.discriminator.to(device)
    if compile:
        g.compile(), d.compile()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    datamodule.data.setup("fit")
    for step, batch in enumerate(datamodule.data.train_dataloader(torch.device(device))):
        if step == warmup:
            dcgan_throughput._sync(device)
            start = time.perf_counter()
        x, y = batch["input"][0].to(device), batch["target"][0].to(device)
        with torch.no_grad():
            fake = g(x)
        real_out, fake_out = d(torch.cat([x, y], 1)), d(torch.cat([x, fake], 1))
        d_loss = 0.5 * (F.softplus(-real_out).mean() + F.softplus(fake_out).mean())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        fake = g(x)
        g_loss = F.softplus(-d(torch.cat([x, fake], 1))).mean() + 100 * (fake - y).abs().mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
    dcgan_throughput._sync(device)
    return (steps - warmup) / (time.perf_counter() - start)


def child(setting: str, loop: str, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if loop.startswith("plain"):
        result = run_plain(setting, device, compile=loop == "plain_compiled")
    else:
        result = run_ganlab(setting, loop == "compiled", device)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.device, args.threads)
    print(
        f"| setting | plain steps/s | eager | compiled | eager / plain | compiled / plain "
        f"| compile s | break-even steps | plain compiled / plain |  ({args.device}, "
        f"{args.threads} threads)"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in args.only:
        runs = {loop: [] for loop in ("plain", "eager", "compiled", "plain_compiled")}
        for _ in range(args.repeats):
            for loop in runs:
                cmd = [sys.executable, __file__, "--child", setting, loop, "--device",
                       args.device, "--threads", str(args.threads)]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                runs[loop].append(json.loads(out.strip().splitlines()[-1]))
        print(row(setting, runs), flush=True)


def row(setting: str, runs: dict[str, list[dict]]) -> str:
    rate = {k: statistics.median(r["rate"] for r in v) for k, v in runs.items()}
    extra = statistics.median(r["warm"] for r in runs["compiled"]) - statistics.median(
        r["warm"] for r in runs["eager"]
    )
    saved = 1 / rate["eager"] - 1 / rate["compiled"]  # seconds per step
    even = f"{extra / saved:.0f}" if saved > 0 else "never"
    return (f"| {setting} | {rate['plain']:.2f} | {rate['eager']:.2f} | {rate['compiled']:.2f} | "
            f"{rate['eager'] / rate['plain']:.3f} | {rate['compiled'] / rate['plain']:.3f} | "
            f"{extra:.0f} | {even} | {rate['plain_compiled'] / rate['plain']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
