"""Cost and floor of ganlab's image metrics on digits (classifier features).

1. Time and peak memory of one evaluation (``n`` generated samples vs the cached real
   statistics: FID, KID, IS, precision/recall, modes), first with empty caches (the
   classifier is trained, the real statistics computed) and then cached.
2. The floor: FID/KID of the real held-out split against the real training split, and the
   same numbers for a trained generator (``--ckpt``) at the same sample count (its first
   draw, and mean +- std over the disjoint draws of that count among ``n``), and at ``n``.

    python benchmarks/image_metrics.py [--n 10000] [--ckpt outputs/.../last.ckpt]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import torch

from ganlab.checkpoints import load_generator
from ganlab.data.images import Digits
from ganlab.metrics.fidelity import fidelity_metrics
from ganlab.metrics.scorer import ImageScorer

METRICS = ("fid", "kid", "is", "pr", "modes")


def timed_evaluation(samples: torch.Tensor, data: Digits, cache_dir: str) -> tuple[float, dict]:
    start = time.perf_counter()
    scorer = ImageScorer(n_real=10_000, metrics=METRICS, cache_dir=cache_dir)
    scorer.prepare(data, "cpu")
    values = scorer.score(samples)
    return time.perf_counter() - start, values


def floor(data: Digits, cache_dir: str, fake: torch.Tensor | None) -> list[tuple[str, str]]:
    """FID/KID of real test vs real train, and of ``fake`` vs real train: at the test set's
    count (the first draw, and mean +- std over disjoint draws of that count) and at all of
    ``fake``. FID is biased upwards at small counts, so only equal counts compare."""
    scorer = ImageScorer(n_real=10_000, metrics=("fid", "kid"), cache_dir=cache_dir)
    scorer.prepare(data, "cpu")
    test, _ = data.real_images("test")
    n = len(test)

    def score(images: torch.Tensor) -> dict:
        subset = min(len(images), 1000)
        return fidelity_metrics(scorer.extractor(images), scorer.real, ("fid", "kid"),
                                kid_subset_size=subset)  # fmt: skip

    def row(values: dict) -> str:
        return f"FID {values['fid']:8.3f}   KID {values['kid_mean']:8.4f}"

    rows = [(f"real test vs real train (n={n})", row(score(test)))]
    if fake is not None:
        rows.append((f"generated, first {n}", row(score(fake[:n]))))
        draws = [score(part)["fid"] for part in fake[: len(fake) // n * n].split(n)]
        fids = torch.tensor(draws)
        spread = f"FID {fids.mean():8.3f} +- {fids.std():.3f} (min {fids.min():.3f})"
        rows.append((f"generated, {len(draws)} disjoint draws of {n}", spread))
        rows.append((f"generated, all {len(fake)}", row(score(fake))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--ckpt", help="a DCGAN checkpoint trained on digits at 32 px")
    args = parser.parse_args()
    data = Digits(image_size=32)
    if args.ckpt:
        g = load_generator(args.ckpt)
        samples = g(g.z(args.n)).float()
    else:  # untrained-quality stand-in: real images with noise, repeated to n
        real, _ = data.real_images("train")
        samples = (real.repeat(args.n // len(real) + 1, 1, 1, 1)[: args.n]).clamp(-1, 1)
    with tempfile.TemporaryDirectory() as cache_dir:
        first, _ = timed_evaluation(samples, data, cache_dir)
        cached, values = timed_evaluation(samples, data, cache_dir)
        rows = floor(data, cache_dir, samples if args.ckpt else None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\none evaluation of {args.n} samples on digits 32 px (classifier features, CPU):")
    print(f"  first (classifier trained, real statistics computed): {first:6.1f} s")
    print(f"  cached (classifier and real statistics from disk):    {cached:6.1f} s")
    print(f"  saved by the caches: {first - cached:.1f} s; peak RSS {peak:.0f} MiB")
    print("  values: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    print("\nFID/KID against the real training split (classifier features):")
    for name, text in rows:
        print(f"  {name:<40} {text}")


if __name__ == "__main__":
    main()
