"""Mode coverage of a toy-mixture recipe over seeds 0, 1, 2: the README table's figures.

Runs ``python -m ganlab <overrides> seed=S logger=csv`` once per seed, one run at a time
(single thread each, ganlab's default), reads each run's ``summary.json`` and prints modes,
high-quality samples (%), reverse KL, the spread inside modes, MMD² over its floor and the
training time per seed and their mean. Metrics follow
the PacGAN protocol (Lin et al. 2018, sec. 5.1): 2,500 samples, 3 std.

    python benchmarks/toy_recipes.py experiment=ring8_best
    python benchmarks/toy_recipes.py experiment=grid25_best --seeds 0 1 --out /tmp/runs steps=2000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = (
    ("modes", "val/modes", "{:.1f}"),
    ("HQ %", "val/hq", "{:.1f}"),
    ("rKL", "val/rkl", "{:.3f}"),
    ("mode spread", "val/mode_spread", "{:.2f}"),
    ("MMD² / floor", "mmd_ratio", "{:.2f}"),
)


def values(metrics: dict) -> list[float]:
    """The columns' values of a run's final metrics (MMD² over its real-vs-real floor)."""
    derived = {"mmd_ratio": metrics["val/mmd"] / metrics["val/mmd_floor"]}
    return [{**metrics, **derived}[key] for _, key, _ in COLUMNS]


def run(overrides: list[str], seed: int, run_dir: Path) -> dict:
    """One training run through the CLI; returns its summary.json (plus wall seconds)."""
    cmd = [
        sys.executable,
        "-m",
        "ganlab",
        *overrides,
        f"seed={seed}",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["wall"] = wall
    return summary


def row(label: str, values: list[float], seconds: float) -> str:
    cells = [fmt.format(v) for (_, _, fmt), v in zip(COLUMNS, values, strict=True)]
    return f"| {label} | " + " | ".join(cells) + f" | {seconds:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="+", help="Hydra overrides, e.g. experiment=ring8_best")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="run dirs (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="toy_recipes_"))
    print("command: python -m ganlab " + " ".join(args.overrides) + " seed=S logger=csv")
    print(f"run dirs: {out}/seed_S\n")
    print("| seed | " + " | ".join(name for name, _, _ in COLUMNS) + " | seconds |")
    print("|---|" + "---|" * (len(COLUMNS) + 1))
    table = []
    for seed in args.seeds:
        summary = run(args.overrides, seed, out / f"seed_{seed}")
        cells = values(summary["metrics"])
        table.append((cells, summary["seconds"]))
        print(row(str(seed), cells, summary["seconds"]), flush=True)
    n = len(table)
    means = [sum(v[i] for v, _ in table) / n for i in range(len(COLUMNS))]
    print(row("mean", means, sum(s for _, s in table) / n))


if __name__ == "__main__":
    main()
