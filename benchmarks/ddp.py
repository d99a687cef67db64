"""G steps per second of ganlab on ring8 with 1 process against 2 DDP processes on the CPU.

Setting: the default config (ring8, MLPs 3x128, batch 256 per process, non-saturating
loss, n_critic 1, Adam, EMA, evaluation every 500 steps, default callbacks) with the CSV
logger, one torch thread per process. The 2-process run uses ``trainer=ddp`` (gloo,
GANDDPStrategy: one flattened all_reduce of D's and of G's gradients per update) with
the same per-process batch, so it does twice the work per step. Throughput is measured
on rank 0 from the end of step WARMUP to the end of the last step (process start-up
excluded; the ranks run in lock-step). Runs are interleaved ``--repeats`` times; the
table reports the median.

    python benchmarks/ddp.py [--steps 1500] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning.pytorch as pl

from ganlab.train import build, compose_config

WARMUP = 100
SETUPS = {
    "1 process": [],
    "2 processes (ddp, gloo)": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"],
}


class StepTimer(pl.Callback):
    """Wall time from the end of step WARMUP to the end of the last step."""

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if module.g_step == WARMUP:
            self.start = time.perf_counter()
        self.end, self.steps = time.perf_counter(), module.g_step - WARMUP


def run(overrides: list[str], steps: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config(["logger=csv", f"steps={steps}", *overrides], run_dir)
        pl.seed_everything(cfg.seed, verbose=False)
        trainer, module, datamodule = build(cfg)
        timer = StepTimer()
        trainer.callbacks.append(timer)
        trainer.fit(module, datamodule=datamodule)
    return timer.steps / (timer.end - timer.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in SETUPS}
    for _ in range(args.repeats):
        for name, overrides in SETUPS.items():
            results[name].append(run(overrides, args.steps))
    base = statistics.median(results["1 process"])
    print(
        f"\nring8, default config, logger=csv, batch 256 per process, {args.steps} steps, "
        f"median of {args.repeats}"
    )
    print(f"{'setup':<26} {'steps/s':>8} {'samples/s':>10} {'vs 1 process':>13}")
    for name, values in results.items():
        rate = statistics.median(values)
        procs = 2 if "2 processes" in name else 1
        print(f"{name:<26} {rate:>8.1f} {rate * 256 * procs:>10.0f} {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
