"""The GPU paths in one short script: trainer=gpu in fp32, bf16-mixed and 16-mixed (both
optimizers' losses scaled, steps skipped only on overflow), WGAN-GP's double backward under
16-mixed, and the toy default job on the GPU. Prints one table row per check.

    python benchmarks/gpu_check.py [--steps 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from ganlab.train import build, compose_config

IMAGE = ["model=dcgan", "data=digits", "data.image_size=32", "trainer=gpu", "logger=csv"]


def fit(overrides: list[str]):
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose_config(overrides, run_dir)
        trainer, module, datamodule = build(cfg)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return trainer, module, seconds


def adam_steps(optimizer) -> int:
    return min(int(s["step"]) for s in optimizer.state.values() if "step" in s)


def check(name: str, overrides: list[str], steps: int) -> dict:
    trainer, module, seconds = fit([*overrides, f"steps={steps}", f"sample_every={steps}"])
    opt_g, opt_d = trainer.optimizers
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    row = {
        "check": name,
        "device": str(module.device),
        "status": module.status,
        "steps/s": steps / seconds,
        "G/D optimizer steps": f"{adam_steps(opt_g)}/{adam_steps(opt_d)}",
        "loss scale": float(scaler.get_scale()) if scaler is not None else None,
        "d_loss": float(module.last["d_loss"]),
        "g_loss": float(module.last["g_loss"]),
        "grad_norm g/d": f"{float(module.last['grad_norm/g']):.3g}/"
        f"{float(module.last['grad_norm/d']):.3g}",
        "peak MiB": torch.cuda.max_memory_allocated() / 2**20,
        "metrics": {
            k: round(float(v), 3)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/")
        },  # fmt: skip
    }
    torch.cuda.reset_peak_memory_stats()
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__)
    for precision in ("32-true", "bf16-mixed", "16-mixed"):
        check(f"dcgan {precision}", [*IMAGE, f"trainer.precision={precision}"], args.steps)
    check(
        "wgan_gp resnet 16-mixed",
        ["experiment=wgan_gp_resnet_digits", "trainer=gpu", "logger=csv",
         "trainer.precision=16-mixed"],
        args.steps // 3,
    )  # fmt: skip
    check("conditional dcgan bf16", [*IMAGE, "model.conditional=true",
                                     "trainer.precision=bf16-mixed"], args.steps)  # fmt: skip
    check("toy default", ["trainer=gpu", "logger=csv", "eval_every=2000"], 2000)


if __name__ == "__main__":
    main()
