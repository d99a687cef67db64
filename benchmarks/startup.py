"""Start-up cost of ganlab's entry points, as a markdown table.

For each entry point (``ganlab``, ``ganlab.sample``, ``ganlab.evaluate``, ``ganlab.translate``,
``ganlab.report``): the import time of what ``python -m`` runs (a package's ``__main__``;
median of ``--repeat`` fresh interpreters), the wall time of ``python -m <entry point>
--help``, and which heavy modules the import leaves in ``sys.modules``; then the wall time
of ``python -m ganlab.sample ckpt=... n=64 out=x.png`` (a 64-image grid) from a checkpoint,
which is trained first unless ``--ckpt`` names one (a 20-step smoke run of a small DCGAN on
digits, in a temporary folder). The machine's load average is printed with the table: the
times are wall-clock and grow with other work.

    python benchmarks/startup.py [--repeat 3] [--ckpt outputs/.../last.ckpt]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY_POINTS = ("ganlab", "ganlab.sample", "ganlab.evaluate", "ganlab.translate", "ganlab.report")
HEAVY = ("torch", "lightning", "wandb", "hydra", "matplotlib", "torchvision", "torchmetrics")
#: the smoke checkpoint: a narrow DCGAN on 16-pixel digits, 20 steps
TINY = (
    "model=dcgan",
    "data=digits",
    "data.image_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "trainer=smoke",
    "logger=csv",
    "~callbacks.metrics",
)
# the import (not the interpreter) is timed inside the fresh process
IMPORT = (
    "import sys, time; t = time.perf_counter(); import {m}; t = time.perf_counter() - t; "
    "print(t, ','.join(n for n in {heavy!r} if n in sys.modules))"
)


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline"}


def _run(args: list[str], cwd: str | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(), cwd=cwd
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def import_time(module: str, repeat: int) -> tuple[float, str]:
    """Median import time of ``module`` in ``repeat`` fresh interpreters, and the heavy
    modules it leaves in ``sys.modules``."""
    times, heavy = [], ""
    for _ in range(repeat):
        _, out = _run(["-c", IMPORT.format(m=module, heavy=HEAVY)])
        seconds, heavy = out.split()[0], (out.split() + [""])[1]
        times.append(float(seconds))
    return statistics.median(times), heavy or "-"


def _help_time(module: str) -> float:
    """Wall time of ``python -m module --help``; NaN when it fails (older versions)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, env=_env()
    )
    return time.perf_counter() - start if result.returncode == 0 else float("nan")


def tiny_checkpoint(folder: str) -> str:
    """Train the smoke checkpoint in ``folder``; returns its path."""
    run_dir = Path(folder) / "run"
    _run(["-m", "ganlab", *TINY, f"hydra.run.dir={run_dir}"], cwd=folder)
    return str(run_dir / "checkpoints" / "last.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh interpreters per figure")
    parser.add_argument("--ckpt", help="a checkpoint to sample (default: train a tiny one)")
    args = parser.parse_args()
    rows = []
    for module in ENTRY_POINTS:
        # what ``python -m`` runs: a package's __main__
        main_module = f"{module}.__main__" if module in ("ganlab", "ganlab.report") else module
        seconds, heavy = import_time(main_module, args.repeat)
        helps = [_help_time(module) for _ in range(args.repeat)]
        rows.append((module, seconds, statistics.median(helps), heavy))
    with tempfile.TemporaryDirectory() as folder:
        ckpt = args.ckpt or tiny_checkpoint(folder)
        grid = [f"out={Path(folder) / 'grid.png'}", "n=64"]
        command = ["-m", "ganlab.sample", f"ckpt={ckpt}", *grid]
        grids = [_run(command)[0] for _ in range(args.repeat)]
    torch_s, _ = import_time("torch", args.repeat)  # the floor of every command but report
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs; medians of {args.repeat} runs\n")
    print("| entry point | import (s) | `--help` (s) | heavy modules after import |")
    print("|---|---:|---:|---|")
    for module, seconds, help_s, heavy in rows:
        shown = "fails" if help_s != help_s else f"{help_s:.2f}"  # NaN: it failed
        print(f"| `{module}` | {seconds:.2f} | {shown} | {heavy} |")
    print(f"| `torch` alone | {torch_s:.2f} | | |")
    print(f"\n64-image grid from a checkpoint (`python -m ganlab.sample ckpt=... n=64 "
          f"out=grid.png`): {statistics.median(grids):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
