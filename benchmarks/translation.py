"""Pix2Pix and CycleGAN on digits, on this CPU: the README's translation tables.

Runs the translation experiments through the command line, one at a time, and prints:

1. Pix2Pix edges -> digits, the paper's ablation (Isola et al. 2017, table 1): L1 + cGAN
   (the recipe), L1 alone, cGAN alone: FID of the outputs, L1 to the targets, and label
   preservation (the digits classifier's accuracy on the outputs) against its ceiling (its
   accuracy on the real held-out digits).
2. Pix2Pix super-resolution x4 on MNIST: PSNR / SSIM of the outputs against bicubic
   upsampling (the input itself).
3. CycleGAN digits <-> MNIST: label preservation both ways against the ceilings, FID per
   domain, round-trip L1; the same at every evaluation of the run; and which classes the
   translations swap (a confusion matrix per direction: the input's true class against the
   scoring classifier's class of its translation, on the held-out items). ``--semantic W``
   adds a run with CyCADA's semantic-consistency loss at weight W (``family.semantic_weight``).
4. Steps/s and peak memory (RSS) of each family's run.

    python benchmarks/translation.py                       # all, the experiments' budgets
    python benchmarks/translation.py --steps 300 --only ablation --threads 2
    python benchmarks/translation.py --only cyclegan --steps 1000 --eval-every 250 \
        --threads 1 --semantic 1.0
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MNIST = os.environ.get("GANLAB_DATA", str(Path(__file__).resolve().parents[2] / "shared/data"))
N_HELD_OUT = 359  # the digits' held-out split, as experiment=cyclegan_digits2mnist scores it
RUNS = {
    "ablation": {
        "L1 + cGAN": ["experiment=pix2pix_edges2digits"],
        "L1 alone": ["experiment=pix2pix_edges2digits", "family.adversarial_weight=0"],
        "cGAN alone": ["experiment=pix2pix_edges2digits", "family.l1_weight=0"],
    },
    "sr": {"Pix2Pix x4": ["experiment=pix2pix_sr_mnist", f"data.base.root={MNIST}"]},
    "cyclegan": {"CycleGAN": ["experiment=cyclegan_digits2mnist", f"data.root={MNIST}"]},
}


def run(
    overrides: list[str], run_dir: Path, threads: int, steps: int | None, every: int | None
) -> dict:
    """One run through the CLI; its summary.json plus wall seconds and peak RSS (MiB).
    ``every``: evaluate every that many steps (default: at the end of ``steps``)."""
    budget = (
        [f"steps={steps}", f"eval_every={every or steps}", f"sample_every={steps}"] if steps else []
    )
    cmd = [sys.executable, "-m", "ganlab", *overrides, *budget, f"threads={threads}",
           "logger=csv", f"hydra.run.dir={run_dir}"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this run's own peak RSS, not the largest so far
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(overrides)} failed:\n{stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["wall"], summary["peak_mib"] = wall, usage.ru_maxrss / 1024
    return summary


def fmt(m: dict, key: str, spec: str = ".3f") -> str:
    return "-" if m.get(key) is None else format(m[key], spec)


def ablation_rows(results: dict[str, dict]) -> list[str]:
    rows = [
        "| G's loss | FID | L1 | label acc | ceiling | acc / ceiling |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        m = s["metrics"]
        rows.append(f"| {name} | {fmt(m, 'val/fid', '.2f')} | {fmt(m, 'val/l1', '.4f')} | "
                    f"{fmt(m, 'val/label_acc')} | {fmt(m, 'val/classifier_acc')} | "
                    f"{fmt(m, 'val/label_rel')} |")  # fmt: skip
    return rows


def sr_rows(results: dict[str, dict]) -> list[str]:
    rows = ["| | PSNR dB | SSIM |", "|---|---|---|"]
    for name, s in results.items():
        m = s["metrics"]
        rows.append(f"| bicubic (the input) | {fmt(m, 'val/psnr_input', '.2f')} | "
                    f"{fmt(m, 'val/ssim_input')} |")  # fmt: skip
        rows.append(f"| {name} | {fmt(m, 'val/psnr', '.2f')} | {fmt(m, 'val/ssim')} |")
    return rows


CYCLE_CELLS = (("label_acc", ".3f"), ("classifier_acc", ".3f"), ("label_rel", ".3f"),
               ("fid", ".2f"), ("cycle_l1", ".4f"))  # fmt: skip


def cyclegan_rows(results: dict[str, dict]) -> list[str]:
    rows = ["| direction | label acc | ceiling | acc / ceiling | FID | cycle L1 |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for s in results.values():
        m = s["metrics"]
        for d, name in (("ab", "digits -> MNIST"), ("ba", "MNIST -> digits")):
            cells = [fmt(m, f"val/{d}/{k}", spec) for k, spec in CYCLE_CELLS]
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def cyclegan_curve_rows(results: dict[str, dict]) -> list[str]:
    """Label preservation (acc / ceiling), FID and cycle L1 both ways at each evaluation."""
    rows = ["| run | step | label rel ab | label rel ba | FID ab | FID ba | cycle L1 ab | "
            "cycle L1 ba |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = (("label_rel", ".3f"), ("fid", ".2f"), ("cycle_l1", ".4f"))
    for name, s in results.items():
        with open(s["run_dir"] / "metrics.csv") as f:
            evals = [r for r in csv.DictReader(f) if r.get("val/ab/label_rel")]
        for r in evals:
            cells = [
                format(float(r[f"val/{d}/{k}"]), spec) for k, spec in keys for d in ("ab", "ba")
            ]
            rows.append(f"| {name} | {r['step']} | " + " | ".join(cells) + " |")
    return rows


def confusion(run_dir: Path, n: int) -> dict[str, torch.Tensor]:
    """Per direction of the run's last checkpoint: counts (K, K) of (the input's true class,
    the scoring classifier's class of its translation) on the first ``n`` held-out items,
    as ``val/*/label_acc`` counts them (the same items, classifier and generator)."""
    from ganlab.checkpoints import load_trained, rebuild_data
    from ganlab.metrics.classifier import load_or_train, predict

    trained = load_trained(run_dir / "checkpoints" / "last.ckpt")
    data = rebuild_data(trained.config)
    data.prepare_data()
    out = {}
    for t in trained.family.translations(data, n):
        classifier, _ = load_or_train(t.domain.classifier, t.domain)
        k = classifier.num_classes
        pairs = t.labels * k + predict(classifier, t.output)
        out[t.name] = torch.bincount(pairs, minlength=k * k).view(k, k)
    return out


def knn_labels(train: torch.Tensor, labels: torch.Tensor, x: torch.Tensor, k: int = 3):
    """The majority class of each image's ``k`` nearest training images in pixel space."""
    flat = train.flatten(1)
    votes = [
        labels[torch.cdist(c, flat).topk(k, largest=False).indices] for c in x.flatten(1).split(128)
    ]
    return torch.cat(votes).mode(1).values


def pixel_knn_rows(name: str, run_dir: Path, n: int) -> list[str]:
    """Label preservation judged by a classifier that shares nothing with the CNNs (the scoring
    one and the semantic loss's): 3-NN in pixel space over the output domain's training
    images; its ceiling is its accuracy on that domain's real held-out images."""
    from ganlab.checkpoints import load_trained, rebuild_data

    trained = load_trained(run_dir / "checkpoints" / "last.ckpt")
    data = rebuild_data(trained.config)
    data.prepare_data()
    rows = []
    for t in trained.family.translations(data, n):
        (x, y), (xt, yt) = t.domain.real_images("train"), t.domain.real_images("test")
        xt, yt = xt[:2000], yt[:2000]  # MNIST's first 2,000 test images, all 359 digits
        ceiling = (knn_labels(x, y, xt) == yt).double().mean().item()
        acc = (knn_labels(x, y, t.output) == t.labels).double().mean().item()
        rows.append(f"| {name} | {t.name} | {acc:.3f} | {ceiling:.3f} | {acc / ceiling:.3f} |")
    return rows


def confusion_rows(name: str, counts: dict[str, torch.Tensor], top: int = 5) -> list[str]:
    """Each direction's matrix (rows: true class; columns: the class of the translation)
    and its ``top`` largest swaps."""
    rows = []
    for d, label in (("ab", "digits -> MNIST"), ("ba", "MNIST -> digits")):
        m = counts[d]
        k = len(m)
        rows += [f"\n{name}, {label} (rows: input class, columns: class of the translation)",
                 "| | " + " | ".join(map(str, range(k))) + " |",
                 "|---" * (k + 1) + "|"]  # fmt: skip
        rows += [f"| {i} | " + " | ".join(str(int(v)) for v in m[i]) + " |" for i in range(k)]
        off = m.clone().fill_diagonal_(0)
        order = off.flatten().argsort(descending=True)[:top]
        swaps = [f"{int(i) // k}->{int(i) % k} {int(off.flatten()[i])}/{int(m[int(i) // k].sum())}"
                 for i in order if off.flatten()[i] > 0]  # fmt: skip
        rows.append("largest swaps: " + ", ".join(swaps))
    return rows


def cost_rows(all_results: dict[str, dict]) -> list[str]:
    rows = ["| run | steps | wall s | steps/s (incl. evaluation) | peak RSS MiB |",
            "|---|---|---|---|---|"]  # fmt: skip
    for name, s in all_results.items():
        rate = s["steps"] / s["seconds"] if s["seconds"] else 0
        rows.append(
            f"| {name} | {s['steps']} | {s['wall']:.0f} | {rate:.2f} | {s['peak_mib']:.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(RUNS), nargs="+", default=list(RUNS))
    parser.add_argument("--steps", type=int, default=None, help="override every budget")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="run dirs (default: temp)")
    parser.add_argument("--eval-every", type=int, default=None, help="with --steps")
    parser.add_argument(
        "--semantic", type=float, nargs="*", default=[], help="CycleGAN + semantic loss weights"
    )
    parser.add_argument("--no-plain", action="store_true", help="CycleGAN: only --semantic")
    args = parser.parse_args()
    cyclegan = {} if args.no_plain else dict(RUNS["cyclegan"])
    for w in args.semantic:
        cyclegan[f"CycleGAN + semantic {w:g}"] = [*RUNS["cyclegan"]["CycleGAN"],
                                                   f"family.semantic_weight={w}"]  # fmt: skip
    RUNS["cyclegan"] = cyclegan
    out = args.out or Path(tempfile.mkdtemp(prefix="ganlab_translation_"))
    tables = {"ablation": ablation_rows, "sr": sr_rows, "cyclegan": cyclegan_rows}
    everything = {}
    for part in args.only:
        results = {}
        for name, overrides in RUNS[part].items():
            run_dir = out / part / name.replace(" ", "_").replace("+", "plus")
            results[name] = run(overrides, run_dir, args.threads, args.steps, args.eval_every)
            results[name]["run_dir"] = run_dir
            print(f"{part}/{name}: {results[name]['wall']:.0f} s", file=sys.stderr, flush=True)
        everything |= {f"{part}: {k}": v for k, v in results.items()}
        print(f"\n## {part}\n" + "\n".join(tables[part](results)), flush=True)
        if part == "cyclegan":
            print("\n".join(["", *cyclegan_curve_rows(results)]), flush=True)
            print("\n| run | direction | 3-NN pixel label acc | its ceiling | acc / ceiling |")
            print("|---|---|---|---|---|")
            for name, s in results.items():
                print("\n".join(pixel_knn_rows(name, s["run_dir"], N_HELD_OUT)))
            for name, s in results.items():
                print("\n".join(confusion_rows(name, confusion(s["run_dir"], N_HELD_OUT))))
    print("\n## cost\n" + "\n".join(cost_rows(everything)))
    print(f"\nrun dirs: {out}")


if __name__ == "__main__":
    main()
