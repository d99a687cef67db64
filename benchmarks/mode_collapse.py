"""The mode-collapse tables: the remedies (unrolling, packing) against the plain GAN, each
with its coverage over seeds and its compute per G step.

Two measurements per row (a row = an experiment and its overrides):

- ``cost``: CPU seconds per G step, timed in this process on one thread after a warm-up
  with evaluation and plots off, and its ratio to the table's plain GAN (the same nets and
  batch): what the coverage costs.
- ``coverage``: ``python -m ganlab <row> seed=S`` per seed, one run at a time; modes, HQ and
  reverse KL (2-D; 2,500 samples, PacGAN protocol) or modes and KL (stacked MNIST, a
  classifier per channel) from each run's ``summary.json``, and the run's CPU seconds.

Runs are kept under ``--out``: a finished run is read back, not repeated, so the table can
be printed again (``--skip-runs``) or extended seed by seed.

    python benchmarks/mode_collapse.py ring8 --seeds 0 1 2 --out runs/ring8
    python benchmarks/mode_collapse.py grid25 --rows unrolled5 --steps 10000 --out runs/grid25
    python benchmarks/mode_collapse.py stacked --seeds 0 --steps 5000 --out runs/stacked
    python benchmarks/mode_collapse.py ring8 --cost-only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

UNROLLED = {"unrolled5": ["family.unroll_steps=5"], "unrolled10": ["family.unroll_steps=10"]}
PACKED = {f"pacgan{m}": [f"model.pack={m}"] for m in (2, 3, 4)}


def toy_rows(data: str) -> dict[str, list[str]]:
    """The 2-D rows: the unrolled GAN's toy settings (k = 0 is its plain GAN) and PacGAN's
    protocol (m = 1 is its plain GAN)."""
    unrolled = f"experiment={data}_unrolled"
    return {
        "gan_unrolled_settings": [unrolled, "family.unroll_steps=0"],
        **{name: [unrolled, *o] for name, o in UNROLLED.items()},
        "gan_pacgan_protocol": [f"experiment={data}_protocol"],
        **{name: [f"experiment={data}_pacgan", *o] for name, o in PACKED.items()},
    }


TABLES = {
    "ring8": toy_rows("ring8"),
    "grid25": toy_rows("grid25"),
    "stacked": {
        "dcgan": ["experiment=stacked_mnist_quarter_dcgan"],
        **{n: ["experiment=stacked_mnist_quarter_unrolled", *o] for n, o in UNROLLED.items()},
        **{n: ["experiment=stacked_mnist_quarter_pacgan", *o] for n, o in PACKED.items()},
    },
}
TOY_METRICS = (("modes", "val/modes", "{:.1f}"), ("HQ %", "val/hq", "{:.1f}"),
               ("rKL", "val/rkl", "{:.3f}"))  # fmt: skip
IMAGE_METRICS = (("modes", "val/modes", "{:.1f}"), ("KL", "val/rkl", "{:.2f}"))


def cpu_seconds_per_step(overrides: list[str], warmup: int = 20, steps: int = 60) -> float:
    """CPU seconds per G step of ``overrides`` on one thread, evaluations off."""
    import tempfile

    import lightning.pytorch as pl
    import torch

    from ganlab.train import build, compose_config

    class Timer(pl.Callback):
        def on_train_batch_end(self, trainer, module, *args) -> None:
            if module.g_step == warmup:
                self.start = time.process_time()
            self.end = time.process_time()

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config([*overrides, f"steps={warmup + steps}", "logger=csv", "trainer=cpu",
                              "threads=1", "~callbacks.evaluate", "~callbacks.metrics",
                              "~callbacks.samples", "ckpt_every=100000"], run_dir)  # fmt: skip
        pl.seed_everything(0, verbose=False)
        trainer, module, datamodule = build(cfg)
        timer = Timer()
        trainer.callbacks.append(timer)
        trainer.fit(module, datamodule=datamodule)
    return (timer.end - timer.start) / steps


def run(overrides: list[str], seed: int, run_dir: Path) -> dict:
    """One run through the CLI (or its finished summary); adds its CPU seconds."""
    done = run_dir / "summary.json"
    if done.is_file() and json.loads(done.read_text()).get("status") == "completed":
        return json.loads(done.read_text())
    cmd = [sys.executable, "-m", "ganlab", *overrides, f"seed={seed}", "logger=csv", "threads=1",
           f"hydra.run.dir={run_dir}"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads(done.read_text())
    summary["cpu_seconds"] = round(after.ru_utime - before.ru_utime
                                   + after.ru_stime - before.ru_stime, 1)  # fmt: skip
    done.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def mean(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values) / len(values)


def fmt_row(name: str, values: list[float | None], metrics, extra: str) -> str:
    cells = ["–" if v is None else f.format(v) for (_, _, f), v in zip(metrics, values,
                                                                    strict=True)]  # fmt: skip
    return f"| {name} | " + " | ".join(cells) + f" | {extra} |"


def coverage(table: str, rows: dict[str, list[str]], args: argparse.Namespace) -> None:
    metrics = IMAGE_METRICS if table == "stacked" else TOY_METRICS
    print("| row (seed) | " + " | ".join(m for m, _, _ in metrics) + " | steps, CPU s |")
    print("|---|" + "---|" * (len(metrics) + 1))
    for name, overrides in rows.items():
        extra = [f"steps={args.steps}"] if args.steps else []
        runs = []
        for seed in args.seeds:
            summary = run([*overrides, *extra], seed, args.out / name / f"seed_{seed}")
            values = [summary["metrics"].get(key) for _, key, _ in metrics]
            runs.append(values)
            cpu = summary.get("cpu_seconds", float("nan"))
            print(fmt_row(f"{name} ({seed})", values, metrics,
                          f"{summary['steps']}, {cpu:.0f}"), flush=True)  # fmt: skip
        if len(runs) > 1:
            means = [mean([r[i] for r in runs]) for i in range(len(metrics))]
            print(fmt_row(f"**{name} (mean of {len(runs)})**", means, metrics, ""), flush=True)


def baseline(table: str, name: str) -> str:
    """The row of the plain GAN that ``name`` is compared with (the same nets and batch)."""
    if table == "stacked":
        return "dcgan"
    return "gan_unrolled_settings" if "unrolled" in name else "gan_pacgan_protocol"


def cost(table: str, rows: dict[str, list[str]]) -> None:
    print("| row | CPU ms per G step | x its plain GAN |")
    print("|---|---|---|")
    every = TABLES[table]
    names = list(dict.fromkeys([baseline(table, n) for n in rows] + list(rows)))
    measured = {name: cpu_seconds_per_step(every[name]) for name in names}
    for name in rows:
        ratio = measured[name] / measured[baseline(table, name)]
        print(f"| {name} | {1000 * measured[name]:.1f} | {ratio:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--rows", nargs="+", help="row names (default: all of the table)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="G steps (default: the recipe's)")
    parser.add_argument("--out", type=Path, default=Path("runs/mode_collapse"))
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    rows = TABLES[args.table]
    unknown = sorted(set(args.rows or []) - set(rows))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(rows)}")
    rows = {k: v for k, v in rows.items() if not args.rows or k in args.rows}
    if not args.skip_cost:
        cost(args.table, rows)
    if not args.cost_only:
        print()
        coverage(args.table, rows, args)


if __name__ == "__main__":
    main()
