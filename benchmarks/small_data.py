"""Small data: DCGAN on digits with a share of the training split, with and without
differentiable augmentation (README, "Small data: differentiable augmentation").

The protocol (the default): ``experiment=dcgan_digits_best`` (16,000 steps) on 10 %, 25 % and
100 % of the digits training split (``data.fraction``: class-stratified, the same images for
every seed), each with no augmentation, DiffAugment, ADA and ADA + LeCam, 3 seeds: 36 runs of
about 40 CPU minutes each. ``--quick``: 1,000 steps, 10 % and 100 %, seed 0 (8 runs).

Each run logs its FID curve against the held-out split (``callbacks.metrics.real_split=test``,
the same 359 images whatever the fraction: does FID rise late, as D memorises?). At the end
every run's generator (EMA) is scored against the full training split, as
``benchmarks/image_metrics.py`` scores ``dcgan_digits_best``: FID of 20 class-matched draws
of 359 samples (the held-out split's count and class counts) over the real floor (the held-out
split against the training split, 1.50), and density/coverage (Naeem et al. 2020) of 10,000
samples. Finished runs are read back, so the protocol can be run a few jobs at a time.

    python benchmarks/small_data.py --quick [--out outputs/small_data]
    python benchmarks/small_data.py --fractions 0.1 --settings none,diffaug --steps 2000
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_metrics import by_class  # noqa: E402

SETTINGS = {
    "none": [],
    "diffaug": ["augment=diffaug"],
    "ada": ["augment=ada"],
    "ada+lecam": ["augment=ada", "+regularizers=lecam"],
}
FULL = {"fractions": "0.1,0.25,1.0", "settings": ",".join(SETTINGS), "seeds": "0,1,2"}
QUICK = {"fractions": "0.1,1.0", "settings": ",".join(SETTINGS), "seeds": "0"}
N_SAMPLES, DRAWS = 10_000, 20


def run(out: Path, fraction: float, setting: str, seed: int, steps: int, evals: int) -> Path:
    """Train one job (skipped when its run directory holds a completed run)."""
    run_dir = out / f"fraction{fraction}_{setting}_seed{seed}"
    summary = run_dir / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("status") == "completed":
        return run_dir
    overrides = [
        "experiment=dcgan_digits_best",
        f"data.fraction={fraction}",
        f"seed={seed}",
        f"steps={steps}",
        f"eval_every={max(1, steps // evals)}",
        f"ckpt_every={steps}",
        f"sample_every={steps}",
        "callbacks.metrics.real_split=test",  # the curve: against the same held-out images
        "callbacks.metrics.n_samples=2000",
        "logger=csv",
        "threads=1",
        f"hydra.run.dir={run_dir}",
        *SETTINGS[setting],
    ]
    print("python -m ganlab " + " ".join(overrides), flush=True)
    subprocess.run([sys.executable, "-m", "ganlab", *overrides], check=True)
    return run_dir


def curve(run_dir: Path) -> list[tuple[int, float]]:
    """(step, FID against the held-out split) as the run logged it."""
    with open(run_dir / "metrics.csv") as f:
        return [
            (int(r["step"]), float(r["val/fid"])) for r in csv.DictReader(f) if r.get("val/fid")
        ]


class Scorer:
    """FID of class-matched draws against the full training split, over the real floor, and
    density/coverage of all samples (classifier features, as ``image_metrics.py``)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        from ganlab.data.images import Digits
        from ganlab.metrics.fidelity import fidelity_metrics
        from ganlab.metrics.scorer import ImageScorer

        self.data = Digits(image_size=32)
        self.scorer = ImageScorer(n_real=10_000, metrics=("fid", "pr"), cache_dir=cache_dir)
        self.scorer.prepare(self.data, "cpu")
        self.fid = lambda feats: fidelity_metrics(feats, self.scorer.real, ("fid",))["fid"]
        test, test_labels = self.data.real_images("test")
        self.n, self.counts = len(test), torch.bincount(test_labels, minlength=10)
        self.floor = self.fid(self.scorer.extractor(test))

    def __call__(self, run_dir: Path) -> dict[str, float]:
        from ganlab.checkpoints import load_trained
        from ganlab.metrics.classifier import predict

        fake = load_trained(run_dir / "checkpoints" / "last.ckpt").family.generate(N_SAMPLES)
        fake = fake.float()
        feats = self.scorer.extractor(fake)
        labels = predict(self.scorer.classifier, fake).cpu()
        gen = torch.Generator().manual_seed(0)
        draws = [by_class(labels, self.counts, gen) for _ in range(DRAWS)]
        fids = torch.tensor([self.fid({k: v[i] for k, v in feats.items()}) for i in draws])
        values = self.scorer.score(fake)
        return {
            "fid_359": fids.mean().item(),
            "fid_359_std": fids.std().item(),
            "over_floor": fids.mean().item() / self.floor,
            "density": values["density"],
            "coverage": values["coverage"],
        }


def table(rows: list[dict], floor: float) -> str:
    """The results as a Markdown table, seeds averaged."""
    lines = [
        f"FID of class-matched draws of 359 vs the training split (floor {floor:.2f}); "
        "density/coverage of 10k samples; FID curve vs the held-out split (first, min, last)",
        "",
        "| data | setting | seeds | FID / floor | density | coverage | curve |",
        "|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["fraction"], row["setting"]), []).append(row)
    for (fraction, setting), group in groups.items():
        mean = {
            k: sum(r[k] for r in group) / len(group) for k in ("fid_359", "density", "coverage")
        }
        c = group[0]["curve"]
        shape = f"{c[0][1]:.1f}, {min(v for _, v in c):.1f}, {c[-1][1]:.1f}" if c else "-"
        lines.append(
            f"| {fraction:.0%} | {setting} | {len(group)} | {mean['fid_359']:.2f} "
            f"({mean['fid_359'] / floor:.2f}x) | {mean['density']:.3f} | "
            f"{mean['coverage']:.3f} | {shape} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000 steps, 10 %% and 100 %%, 1 seed"
    )
    parser.add_argument("--out", default="outputs/small_data")
    parser.add_argument("--fractions", help="comma-separated shares of the training split")
    parser.add_argument("--settings", help=f"comma-separated: {', '.join(SETTINGS)}")
    parser.add_argument("--seeds", help="comma-separated")
    parser.add_argument("--steps", type=int, help="G steps per run (16,000; --quick 1,000)")
    parser.add_argument("--evals", type=int, default=8, help="points of the FID curve")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    fractions = [float(f) for f in (args.fractions or plan["fractions"]).split(",")]
    settings = (args.settings or plan["settings"]).split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}: choose from {', '.join(SETTINGS)}")
    seeds = [int(s) for s in (args.seeds or plan["seeds"]).split(",")]
    steps = args.steps or (1000 if args.quick else 16_000)
    out = Path(args.out)
    runs = [
        (f, s, seed, run(out, f, s, seed, steps, args.evals))
        for f in fractions
        for s in settings
        for seed in seeds
    ]
    scorer = Scorer()
    rows = []
    for fraction, setting, seed, run_dir in runs:
        values = {"fraction": fraction, "setting": setting, "seed": seed}
        rows.append({**values, **scorer(run_dir), "curve": curve(run_dir)})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "curve"}), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n" + table(rows, scorer.floor))


if __name__ == "__main__":
    main()
