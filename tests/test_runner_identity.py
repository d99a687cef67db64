"""The runner redesign changed no behaviour: seeded short runs end with the very parameters
(G, D, EMA of G, BatchNorm buffers) that the pre-runner GANModule produced.

``tests/data/runner_reference.pt`` was written by ``python tests/test_runner_identity.py``
on the code before the redesign (commit c0f09a3); the test re-runs the same jobs and
compares every tensor with ``torch.equal``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).parent / "data" / "runner_reference.pt"

#: name -> overrides of the seeded short runs (one thread: a fixed order of reductions)
JOBS = {
    "default": ["steps=150", "threads=1"],
    "wgan_gp_ncritic3": ["loss=wgan_gp", "n_critic=3", "steps=60", "threads=1"],
    "cgan_digits_ema": [
        "experiment=cgan_digits",
        "steps=12",
        "data.image_size=16",
        "model.generator.width=8",
        "model.discriminator.width=8",
        "ema=0.9",
        "eval_every=12",
        "sample_every=12",
        "callbacks.metrics.n_samples=200",
        "callbacks.metrics.n_real=200",
        "threads=1",
    ],
}


def final_tensors(run_dir: Path, overrides: list[str]) -> dict[str, list[torch.Tensor]]:
    """Train one job; its G, D and EMA-of-G tensors (parameters then buffers, in order)."""
    from ganlab.train import build, compose_config

    cfg = compose_config(["logger=csv", "trainer=cpu", *overrides], run_dir)
    torch.manual_seed(cfg.seed)
    import lightning.pytorch as pl

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_num_threads(cfg.threads)
    trainer, module, datamodule = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return {role: [t.detach().clone() for t in tensors] for role, tensors in roles(module).items()}


def roles(module) -> dict[str, list[torch.Tensor]]:
    """The module's networks by role, parameters then buffers."""
    family = module.family
    ema = family.ema["generator"] if family.ema is not None else None
    nets = {"G": family.generator, "D": family.discriminator, "G_ema": ema}
    return {
        role: [*net.parameters(), *net.buffers()] for role, net in nets.items() if net is not None
    }


@pytest.mark.parametrize("job", list(JOBS))
def test_seeded_runs_end_with_the_pre_runner_parameters(job, tmp_path):
    reference = torch.load(REFERENCE, weights_only=True)[job]
    result = final_tensors(tmp_path, JOBS[job])
    assert sorted(result) == sorted(reference)
    for role, tensors in reference.items():
        assert len(result[role]) == len(tensors), role
        for i, (got, want) in enumerate(zip(result[role], tensors, strict=True)):
            assert torch.equal(got, want), f"{job}: {role} tensor {i} differs"


if __name__ == "__main__":  # record the reference (done once, before the redesign)
    import tempfile

    out = {}
    for name, overrides in JOBS.items():
        with tempfile.TemporaryDirectory() as d:
            out[name] = final_tensors(Path(d), overrides)
        print(name, {r: sum(t.numel() for t in ts) for r, ts in out[name].items()}, file=sys.stderr)
    REFERENCE.parent.mkdir(exist_ok=True)
    torch.save(out, REFERENCE)
    print(f"wrote {REFERENCE}")
