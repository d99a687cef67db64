"""Proof that a refactor changes no behaviour: seeded short jobs of every shipped family,
in-process on one thread, and a sha256 of every tensor of the family's state afterwards
(G, D, EMA, both CycleGAN directions, image pools).

    python scripts/param_hashes.py before.json            # on the old commit
    python scripts/param_hashes.py after.json             # on the new one
    diff before.json after.json                           # nothing: bit-identical

Hashes compare runs made on the same machine only (CPUs round differently).
Usage: param_hashes.py OUT.json [job ...]"""

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import MNIST_ROOT  # noqa

TINY = ["model.generator.width=8", "model.discriminator.width=8", "trainer=cpu", "threads=1"]
NO_METRICS = ["~callbacks.translation", "~callbacks.metrics"]
IMG = [
    "data.image_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "eval_every=1000",
    "sample_every=1000",
    "~callbacks.metrics",
    "threads=1",
]
R1 = ["+regularizers.r1._target_=ganlab.losses.R1Penalty", "+regularizers.r1.weight=1.0"]
JOBS = {
    "default": ["steps=150", "threads=1"],
    "wgan_gp_ncritic3": ["loss=wgan_gp", "n_critic=3", "steps=60", "threads=1"],
    "wgan_clip": ["loss=wgan", "steps=30", "threads=1"],
    "latent_lazy_r1": ["steps=40", "threads=1", *R1, "+regularizers.r1.interval=4"],
    "pacgan_gp": [
        "experiment=ring8_pacgan",
        "loss=wgan_gp",
        "n_critic=2",
        "steps=20",
        "threads=1",
        "eval_every=1000",
    ],
    "cgan_digits_ema_r1": [
        "experiment=cgan_digits",
        "steps=12",
        "ema=0.9",
        *IMG,
        "model.discriminator.norm=layer",
        *R1,
    ],
    "dcgan_digits_cond": ["experiment=cgan_digits", "steps=12", "ema=0", *IMG],
    "unrolled": ["family=unrolled", "family.unroll_steps=2", "steps=20", "threads=1"],
    "unrolled_gp_none": [
        "family=unrolled",
        "family.unroll_steps=2",
        "family.through=none",
        "loss=wgan_gp",
        "n_critic=2",
        "steps=10",
        "threads=1",
    ],
    "pix2pix": [
        "family=pix2pix",
        "data=edges",
        "data.base.image_size=16",
        "data.batch_size=8",
        "steps=12",
        *TINY,
        *NO_METRICS,
        "sample_every=1000",
    ],
    "pix2pix_r1": [
        "family=pix2pix",
        "data=edges",
        "data.base.image_size=16",
        "data.batch_size=8",
        "steps=6",
        *TINY,
        *NO_METRICS,
        "sample_every=1000",
        *R1,
        "model.discriminator.norm=none",
    ],
    "pix2pix_ncritic2": [
        "family=pix2pix",
        "data=edges",
        "data.base.image_size=16",
        "data.batch_size=8",
        "n_critic=2",
        "steps=6",
        *TINY,
        *NO_METRICS,
        "sample_every=1000",
    ],
    "cyclegan": [
        "family=cyclegan",
        "data=digits2mnist",
        f"data.root={MNIST_ROOT}",
        "data.download=false",
        "data.image_size=16",
        "data.batch_size=2",
        "family.pool_size=3",
        "steps=4",
        *TINY,
        *NO_METRICS,
        "sample_every=1000",
    ],
    "cyclegan_r1": [
        "family=cyclegan",
        "data=digits2mnist",
        f"data.root={MNIST_ROOT}",
        "data.download=false",
        "data.image_size=16",
        "data.batch_size=2",
        "family.pool_size=3",
        "steps=3",
        *TINY,
        *NO_METRICS,
        "sample_every=1000",
        *R1,
        "model.discriminator.norm=none",
    ],
}


def run(overrides):
    import lightning.pytorch as pl

    from ganlab.train import build, compose_config

    with tempfile.TemporaryDirectory() as d:
        cfg = compose_config(["logger=csv", "trainer=cpu", *overrides], Path(d))
        torch.manual_seed(cfg.seed)
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        torch.set_num_threads(cfg.threads)
        trainer, module, datamodule = build(cfg)
        trainer.fit(module, datamodule=datamodule)
        state = module.family.state_dict()
    h = hashlib.sha256()
    for k, t in state.items():
        h.update(k.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {
        "hash": h.hexdigest()[:16],
        "tensors": len(state),
        "g_step": module.g_step,
        "keys": sorted({k.split(".")[0] for k in state}),
    }


if __name__ == "__main__":
    out = Path(sys.argv[1])
    names = sys.argv[2:] or list(JOBS)
    res = json.loads(out.read_text()) if out.exists() else {}
    for n in names:
        res[n] = run(JOBS[n])
        print(n, res[n], flush=True)
        out.write_text(json.dumps(res, indent=1))
