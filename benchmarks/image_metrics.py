"""Cost and floor of ganlab's image metrics on digits (classifier features).

1. Time and peak memory of one evaluation (``n`` generated samples vs the cached real
   statistics: FID, KID, IS, precision/recall, modes), first with empty caches (the
   classifier is trained, the real statistics computed) and then cached.
2. The floor: FID of the real held-out split against the real training split (n = 359), of
   real draws of 359 inside the training split (random and class-stratified), and of a
   trained generator's (``--ckpt``) draws of 359 (random and class-matched) and all ``n``
   samples. See ``floor``.

    python benchmarks/image_metrics.py [--n 10000] [--ckpt outputs/.../last.ckpt]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import torch

from ganlab.checkpoints import load_trained
from ganlab.data.images import Digits
from ganlab.metrics.classifier import predict
from ganlab.metrics.fidelity import RealStats, fidelity_metrics
from ganlab.metrics.scorer import ImageScorer

METRICS = ("fid", "kid", "is", "pr", "modes")


def timed_evaluation(samples: torch.Tensor, data: Digits, cache_dir: str) -> tuple[float, dict]:
    start = time.perf_counter()
    scorer = ImageScorer(n_real=10_000, metrics=METRICS, cache_dir=cache_dir)
    scorer.prepare(data, "cpu")
    values = scorer.score(samples)
    return time.perf_counter() - start, values


def spread(fids: list[float]) -> str:
    t = torch.tensor(fids)
    return f"FID {t.mean():8.3f} +- {t.std():.3f} ({len(fids)} draws)"


def by_class(labels: torch.Tensor, counts: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random draw of ``counts[c]`` indices of each class c."""
    parts = []
    for c, count in enumerate(counts.tolist()):
        members = (labels == c).nonzero().squeeze(1)
        parts.append(members[torch.randperm(len(members), generator=gen)[:count]])
    return torch.cat(parts)


def floor(data: Digits, cache_dir: str, fake: torch.Tensor | None) -> list[tuple[str, str]]:
    """FID of real and generated images against the real training split at the held-out
    split's count n (359), where FID is biased upwards and only equal counts compare.

    The held-out split is stratified: it has exactly its share of each class. A random draw
    of n does not, and the spread of its class counts alone raises FID at this n. So the
    floor is also measured inside the training split (n real images drawn at random, or
    class-stratified, against the rest), and generated draws are scored both at random and
    with the held-out split's class counts (by the domain classifier's labels)."""
    scorer = ImageScorer(n_real=10_000, metrics=("fid", "kid"), cache_dir=cache_dir)
    scorer.prepare(data, "cpu")
    test, test_labels = data.real_images("test")
    train, train_labels = data.real_images("train")
    n, counts = len(test), torch.bincount(test_labels, minlength=10)

    def fid(features: dict, real=scorer.real) -> float:
        return fidelity_metrics(features, real, ("fid",))["fid"]

    rows = [
        (
            f"real held-out split vs train (n={n}, stratified)",
            f"FID {fid(scorer.extractor(test)):8.3f}",
        )
    ]
    feats = scorer.extractor(train)
    gen = torch.Generator().manual_seed(0)
    for name, draws in (
        ("random", [torch.randperm(len(train), generator=gen)[:n] for _ in range(20)]),
        ("stratified", [by_class(train_labels, counts, gen) for _ in range(20)]),
    ):
        fids = []
        for idx in draws:
            rest = torch.ones(len(train), dtype=torch.bool)
            rest[idx] = False
            stats = RealStats.from_features(feats["features"][rest])
            fids.append(fid({k: v[idx] for k, v in feats.items()}, stats))
        rows.append((f"real, {name} {n} of train vs the other {len(train) - n}", spread(fids)))
    if fake is not None:
        fake_feats = scorer.extractor(fake)
        labels = predict(scorer.classifier, fake).cpu()
        for name, draws in (
            ("random", [torch.randperm(len(fake), generator=gen)[:n] for _ in range(20)]),
            ("class-matched", [by_class(labels, counts, gen) for _ in range(20)]),
        ):
            fids = [fid({k: v[idx] for k, v in fake_feats.items()}) for idx in draws]
            rows.append((f"generated, {name} draws of {n} vs train", spread(fids)))
        rows.append((f"generated, all {len(fake)} vs train", f"FID {fid(fake_feats):8.3f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--ckpt", help="a DCGAN checkpoint trained on digits at 32 px")
    args = parser.parse_args()
    data = Digits(image_size=32)
    if args.ckpt:
        samples = load_trained(args.ckpt).family.generate(args.n).float()
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
    print("  values: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items() if "/" not in k))
    print("\nThe floor: FID at the held-out split's count (classifier features):")
    for name, text in rows:
        print(f"  {name:<52} {text}")


if __name__ == "__main__":
    main()
