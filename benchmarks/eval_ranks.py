"""Image-metric evaluation on 1 and 2 processes (CPU, gloo, one thread each): the first
evaluation of a run and the second, which has the real statistics in memory.

Each process scores its share of ``n`` stand-in samples (real digits with noise; generation
is not timed) with ``ImageScorer.score_share``, as the metrics callback does under DDP: it
extracts the features of its share only, the features are gathered, and every process
computes the values (checked equal to one process's). "first, empty cache" trains the domain
classifier (rank 0) and computes the real statistics (each rank its share of the real
images); "first, classifier cached" only computes the real statistics.

    python benchmarks/eval_ranks.py [--n 10000] [--n-real 10000]

Prints a markdown table (seconds, the slowest rank).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ganlab.collectives import share_slice
from ganlab.data.images import Digits
from ganlab.metrics.scorer import ImageScorer

METRICS = ("fid", "kid", "is", "pr", "modes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _stand_in(n: int) -> torch.Tensor:
    """``n`` real training digits (32 px) with noise, the same on every rank."""
    real, _ = Digits(image_size=32).real_images("train")
    noise = torch.randn(n, *real.shape[1:], generator=torch.Generator().manual_seed(0))
    return (real.repeat(n // len(real) + 1, 1, 1, 1)[:n] + 0.2 * noise).clamp(-1, 1)


def _evaluations(rank: int, world: int, args: argparse.Namespace) -> tuple[list, dict]:
    """Times of the first and the second evaluation on this rank, and the values."""
    data = Digits(image_size=32)
    share = _stand_in(args.n)[share_slice(args.n, world, rank)]
    scorer = ImageScorer(n_real=args.n_real, metrics=METRICS, cache_dir=args.cache)
    times = []
    for evaluation in range(2):
        _barrier(world)
        start = time.perf_counter()
        if evaluation == 0:  # as ImageMetrics._prepare: rank 0 trains/loads the classifier first
            if rank == 0:
                scorer.load_nets(data, "cpu")
            _barrier(world)
            if rank > 0:
                scorer.load_nets(data, "cpu")
            scorer.prepare_real(data, across_ranks=world > 1)
        values = scorer.score_share(share, args.n)
        _barrier(world)
        times.append(time.perf_counter() - start)
    return times, values


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, queue) -> None:
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
    try:
        queue.put((rank, *_evaluations(rank, world, args)))
    finally:
        if world > 1:
            dist.destroy_process_group()


def run(world: int, args: argparse.Namespace) -> tuple[list[float], dict]:
    """(first, second) seconds of the slowest rank, and rank 0's values."""
    ctx = mp.get_context("spawn")
    queue, port = ctx.Queue(), _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, args, queue)) for r in range(world)]
    for p in procs:
        p.start()
    results = sorted(queue.get() for _ in procs)
    for p in procs:
        p.join()
    times = [max(r[1][i] for r in results) for i in range(2)]
    return times, results[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n-real", type=int, default=10_000)
    args = parser.parse_args()
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as root:
        template = Path(root) / "classifier_only"
        for world in (1, 2):
            for case in ("empty cache", "classifier cached"):
                args.cache = str(Path(root) / f"{world}_{case.split()[0]}")
                if case == "classifier cached":  # the classifier of the first run, no statistics
                    shutil.copytree(template, args.cache)
                (first, second), values = run(world, args)
                if not template.exists():
                    template.mkdir()
                    for path in Path(args.cache).glob("classifier_*.pt"):
                        shutil.copy(path, template)
                reference = reference or values
                diff = max(abs(values[k] - v) / max(abs(v), 1e-12) for k, v in reference.items())
                rows.append((world, case, first, second, diff))
    print(f"\n{args.n} samples vs {reference and 'digits'} real statistics, 32 px, CPU, "
          "1 thread per process (seconds, slowest rank):\n")  # fmt: skip
    print("| processes | first evaluation | first (s) | second (s) | second / first |"
          " max rel. diff to 1 process |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for world, case, first, second, diff in rows:
        print(f"| {world} | {case} | {first:.1f} | {second:.1f} | {second / first:.2f} |"
              f" {diff:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
