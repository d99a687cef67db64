"""DDP with GANDDPStrategy: same parameters on every rank, 2 ranks x B == 1 process x 2B,
files written once, and Hydra multiruns whose jobs each launch their own ranks.

The multi-process tests run on the CPU with gloo. A 2-rank run of a plain Lightning
script is this file run as a script (``python tests/test_ddp.py CASE OUT_DIR``): Lightning
re-runs ``sys.argv`` for rank 1, so the test cases live at module level.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.testing import assert_close

from ganlab.data.spec import DataSpec
from ganlab.data.toy import ring
from ganlab.families import LatentGAN
from ganlab.losses import (
    GradientPenalty,
    LeCam,
    NonSaturatingLoss,
    R1Penalty,
    WassersteinLoss,
)
from ganlab.module import GANModule
from ganlab.nets import MLP
from ganlab.strategy import GANDDPStrategy

HERE = Path(__file__).resolve()
B = 8  # per-rank batch of the 2-rank run; the 1-process run takes 2B
STEPS = 4
SHARED_SEED = 1234  # data, z and GP epsilon: one stream, split by rank


def _world() -> tuple[int, int]:
    """(rank, world size) of this process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _my_rows(full: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """This rank's equal share of ``full`` along ``dim``: rows r*n:(r+1)*n."""
    rank, world = _world()
    return full.chunk(world, dim=dim)[rank]


class SharedBatches(pl.LightningDataModule):
    """Real batches drawn as one (n_critic, world*B, 2) stream, the same on every rank; each
    rank trains on its rows. With 1 process and batch 2B the rows are the whole stream."""

    def __init__(self, batch_size: int, steps: int, n_critic: int) -> None:
        super().__init__()
        self.batch_size, self.steps, self.n_critic = batch_size, steps, n_critic
        self.distribution = ring()

    def train_dataloader(self):
        _, world = _world()
        gen = torch.Generator().manual_seed(SHARED_SEED)
        full = [
            self.distribution.sample(self.n_critic * world * self.batch_size, gen)
            .double()
            .view(self.n_critic, world * self.batch_size, -1)
            for _ in range(self.steps)
        ]
        return _Batches([_my_rows(batch, dim=1) for batch in full])


class _Batches:
    """An iterable of batches (a list would be read as a list of loaders)."""

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


class SharedZ(LatentGAN):
    """Training z drawn as world*n rows from one stream, the same on every rank; each rank
    takes its own."""

    def sample_z(self, n, generator):
        if not hasattr(self, "_shared_z"):
            self._shared_z = torch.Generator().manual_seed(SHARED_SEED + 1)
        _, world = _world()
        full = torch.randn(
            world * n, self.latent.dim, generator=self._shared_z, dtype=torch.float64
        )
        return _my_rows(full).to(generator.device)


class SharedGradientPenalty(GradientPenalty):
    """GradientPenalty whose interpolation weights come from one shared stream (the base
    class draws them from torch's global RNG)."""

    def penalty(self, d, real, fake, generator=None):
        if not hasattr(self, "_gen"):
            self._gen = torch.Generator().manual_seed(SHARED_SEED + 2)
        _, world = _world()
        eps = _my_rows(torch.rand(world * real.shape[0], 1, generator=self._gen, dtype=real.dtype))
        x_hat = eps * real + (1 - eps) * fake.detach()
        x_hat.requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
        return self.weight * (grad.flatten(1).norm(dim=1) - self.target).pow(2).mean()


CASES = {
    # non-saturating loss, lazy R1 (double backward every 2nd D update), EMA of G
    "nonsat_r1_ema": dict(
        loss=NonSaturatingLoss, n_critic=1, ema=0.9, reg=lambda: R1Penalty(1.0, interval=2)
    ),
    # WGAN-GP: gradient penalty (double backward) on every D update, 3 D updates per step
    "wgan_gp": dict(
        loss=WassersteinLoss, n_critic=3, ema=0.0, reg=lambda: SharedGradientPenalty(10.0)
    ),
    # LeCam: its anchors (batch means of D's outputs averaged over the ranks) are state
    "nonsat_lecam": dict(loss=NonSaturatingLoss, n_critic=2, ema=0.0, reg=lambda: LeCam(0.3)),
}


class SaveStates(pl.Callback):
    """Each rank saves its module's state_dict at the start and at the end of training."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)

    def _save(self, module, when):
        state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        torch.save(state, self.out / f"{when}_rank{module.global_rank}.pt")

    def on_train_start(self, trainer, module):
        self._save(module, "init")

    def on_train_end(self, trainer, module):
        self._save(module, "final")


def run_case(name: str, out: Path, devices: int, num_nodes: int = 1) -> None:
    """Fit case ``name`` on ``devices`` CPU processes on each of ``num_nodes`` nodes,
    per-rank batch 2B/(devices x num_nodes)."""
    case = CASES[name]
    rank = int(os.environ.get("LOCAL_RANK", 0))
    # ranks build different nets: the strategy must broadcast rank 0's
    torch.manual_seed(100 + rank)
    family = SharedZ(
        generator=functools.partial(MLP, 2, 2, width=16, depth=2),
        discriminator=functools.partial(MLP, 2, 1, width=16, depth=2, activation="leaky_relu"),
        loss=case["loss"](),
        regularizers=[case["reg"]()],
        latent_dim=2,
        n_critic=case["n_critic"],
    )
    family.setup(DataSpec("points", {"x": (2,)}))
    adam = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.9))
    module = GANModule(family, {"g": adam, "d": adam}, ema=case["ema"])
    data = SharedBatches(2 * B // (devices * num_nodes), STEPS, case["n_critic"])
    fit_case(module, data, out, devices, num_nodes)


class SharedDomains(pl.LightningDataModule):
    """Two image domains drawn as one (1, world*B, C, S, S) stream each, the same on every
    rank; each rank trains on its rows (CycleGAN's batches: {"a": ..., "b": ...})."""

    def __init__(self, batch_size: int, steps: int) -> None:
        super().__init__()
        self.batch_size, self.steps = batch_size, steps

    def train_dataloader(self):
        _, world = _world()
        gen = torch.Generator().manual_seed(SHARED_SEED)
        shape = (1, world * self.batch_size, 1, 8, 8)
        full = [
            {k: torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1 for k in "ab"}
            for _ in range(self.steps)
        ]
        return _Batches([{k: _my_rows(v, dim=1) for k, v in b.items()} for b in full])


def run_cyclegan(out: Path, devices: int) -> None:
    """CycleGAN (two G, two D, one optimizer each side) on ``devices`` CPU processes."""
    from ganlab.families import CycleGAN
    from ganlab.losses import LeastSquaresLoss
    from ganlab.nets import CycleGANGenerator, PatchGANDiscriminator

    torch.manual_seed(100 + int(os.environ.get("LOCAL_RANK", 0)))
    family = CycleGAN(
        generator=functools.partial(CycleGANGenerator, width=4, n_blocks=1),
        discriminator=functools.partial(
            PatchGANDiscriminator, width=4, n_layers=1, norm="instance"
        ),
        loss=LeastSquaresLoss(),
        pool_size=0,  # each rank's pool would hold its own fakes
    )
    family.setup(DataSpec("domains", {"a": (1, 8, 8), "b": (1, 8, 8)}))
    adam = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.9))
    module = GANModule(family, {"g": adam, "d": adam})
    fit_case(module, SharedDomains(2 * B // devices, STEPS), out, devices)


def fit_case(
    module: GANModule, data: pl.LightningDataModule, out: Path, devices: int, num_nodes: int = 1
) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        num_nodes=num_nodes,
        strategy=GANDDPStrategy(),
        precision="64-true",
        max_epochs=1,
        logger=False,
        callbacks=[SaveStates(out)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=out,
        log_every_n_steps=1,
    )
    trainer.fit(module, datamodule=data)


def run_unrolled(out: Path, devices: int) -> None:
    """The unrolled GAN, second order through 3 look-ahead updates of D's Adam: each
    look-ahead update averages D's gradients over the ranks (differentiably)."""
    from ganlab.families import UnrolledGAN

    class SharedZUnrolled(SharedZ, UnrolledGAN):
        pass

    torch.manual_seed(100 + int(os.environ.get("LOCAL_RANK", 0)))
    family = SharedZUnrolled(
        generator=functools.partial(MLP, 2, 2, width=16, depth=2, activation="tanh"),
        discriminator=functools.partial(MLP, 2, 1, width=16, depth=2, activation="tanh"),
        loss=NonSaturatingLoss(),
        latent_dim=2,
        unroll_steps=3,
        through="full",
    )
    family.setup(DataSpec("points", {"x": (2,)}))
    adam = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.9))
    module = GANModule(family, {"g": adam, "d": adam})
    fit_case(module, SharedBatches(2 * B // devices, STEPS, 1), out, devices)


class SharedImages(SharedBatches):
    """SharedBatches of 1 x 8 x 8 images: each real batch is (n_critic, world*B, 1, 8, 8)."""

    def train_dataloader(self):
        _, world = _world()
        gen = torch.Generator().manual_seed(SHARED_SEED)
        shape = (self.n_critic, world * self.batch_size, 1, 8, 8)
        full = [torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1 for _ in range(4)]
        return _Batches([_my_rows(batch, dim=1) for batch in full[: self.steps]])


def run_ada(out: Path, devices: int) -> None:
    """ADA on images. Its r_t = E[sign D(real)] is averaged over the ranks before it moves p,
    so every rank holds the same p and r_t, those of one process with the whole batch. With
    target 1 (r_t <= 1) p stays 0: D sees the images themselves, whatever each rank draws,
    so the runs can be compared while r_t, its running sums and the update count are state."""
    from ganlab.augment import ADA

    torch.manual_seed(100 + int(os.environ.get("LOCAL_RANK", 0)))
    family = SharedZ(
        generator=lambda **_: torch.nn.Sequential(MLP(2, 64, width=16, depth=2), torch.nn.Tanh(),
                                              torch.nn.Unflatten(1, (1, 8, 8))),
        discriminator=lambda **_: torch.nn.Sequential(torch.nn.Flatten(), MLP(64, 1, width=16,
                                                  depth=2, activation="leaky_relu")),
        loss=NonSaturatingLoss(),
        latent_dim=2,
        n_critic=2,
        data_kind="images",
    )  # fmt: skip
    family.setup(DataSpec("images", {"x": (1, 8, 8)}))
    family.use_augment(ADA(target=1.0, interval=5))
    adam = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.9))
    module = GANModule(family, {"g": adam, "d": adam})
    fit_case(module, SharedImages(2 * B // devices, STEPS, 2), out, devices)


RUNNERS = {"cyclegan": run_cyclegan, "unrolled": run_unrolled, "ada": run_ada}


def _script(*args: str, timeout: int = 180) -> None:
    """This file as a script, in a subprocess; fails the test if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(HERE), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


# --------------------------------------------------------------------------- tests


def test_strategy_rejects_ddp_options():
    with pytest.raises(TypeError, match="find_unused_parameters"):
        GANDDPStrategy(find_unused_parameters=True)


def assert_ranks_equal_one_process(ddp: Path, ref: Path, ranks: str) -> None:
    """The 2 processes' final states (``ddp``) are bit-identical to each other and equal the
    1-process run with the doubled batch (``ref``), which trained (``ranks`` names them)."""
    final0, final1 = (torch.load(ddp / f"final_rank{r}.pt", weights_only=True) for r in (0, 1))
    final_ref = torch.load(ref / "final_rank0.pt", weights_only=True)
    init = torch.load(ref / "init_rank0.pt", weights_only=True)
    assert any(not torch.equal(final_ref[k], init[k]) for k in final_ref), "nothing trained"
    for key in final_ref:
        assert torch.equal(final0[key], final1[key]), f"{key} differs between the {ranks}"
        assert_close(final0[key], final_ref[key], rtol=1e-10, atol=1e-12, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*CASES, *RUNNERS])
def test_two_ranks_match_one_process_with_twice_the_batch(name, tmp_path):
    ref, ddp = tmp_path / "ref", tmp_path / "ddp"
    ref.mkdir(), ddp.mkdir()
    # 1 process x 2B, in this process (the strategy with 1 device: no child, no collective)
    runner(name)(ref, devices=1)
    assert "LOCAL_RANK" not in os.environ and not torch.distributed.is_initialized()
    # 2 processes x B
    _script(name, str(ddp))

    init0, init1 = _load(ddp / "init_rank0.pt"), _load(ddp / "init_rank1.pt")
    final0, final1 = _load(ddp / "final_rank0.pt"), _load(ddp / "final_rank1.pt")
    # rank 1 built other nets: it starts from rank 0's, which are the 1-process run's
    for key in init0:
        assert torch.equal(init0[key], init1[key]), f"{key} differs between ranks at the start"
    assert_close(init0, _load(ref / "init_rank0.pt"), rtol=0, atol=0)
    # after the steps: bit-identical across ranks, and equal to 1 process x 2B
    for key in final0:
        assert torch.equal(final0[key], final1[key]), f"{key} differs between ranks after training"
    final_ref = _load(ref / "final_rank0.pt")
    assert final0.keys() == final_ref.keys()
    moved = [k for k in final0 if not torch.equal(final_ref[k], init0[k])]
    nets = {k.split(".")[1] for k in moved}
    if name == "nonsat_lecam":  # the anchors moved, and are equal on both ranks (above)
        assert "family.regularizers.0.ema_real" in moved
    if name == "ada":  # r_t was measured (equal on both ranks, above); p stayed at 0
        assert {"family.augment.rt", "family.augment.pending"} <= set(moved)
        assert final0["family.augment.p"] == 0 and final0["family.augment.rt"] != 0
    assert nets >= ({"g_ab", "g_ba", "d_a", "d_b"} if name == "cyclegan" else {"generator",
                    "discriminator"}), f"training did not move every net: {nets}"  # fmt: skip
    for key in final0:
        assert final0[key].dtype == torch.float64 or not final0[key].is_floating_point()
        assert_close(final0[key], final_ref[key], rtol=1e-10, atol=1e-12, msg=key)


def _metrics_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _check_run_dir(run_dir: Path, eval_steps: list[int]) -> dict:
    """One summary, one metrics.csv (each value logged once per step), one plot per
    evaluation, no file of a child rank."""
    names = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert names.count("summary.json") == 1 and names.count("metrics.csv") == 1, names
    assert sorted(n for n in names if n.startswith("plots/")) == [
        f"plots/step_{s:07d}.png" for s in eval_steps
    ], names
    stray = [n for n in names if n.endswith(".log") and n != "train.log"]
    assert not stray, f"files of a child rank: {stray}"
    assert sorted(n for n in names if n.startswith(".hydra/")) == [
        ".hydra/config.yaml",
        ".hydra/hydra.yaml",
        ".hydra/overrides.yaml",
    ]
    rows = _metrics_rows(run_dir / "metrics.csv")
    assert len({tuple(r.items()) for r in rows}) == len(rows), "duplicated rows in metrics.csv"
    logged = Counter((r["step"], k) for r in rows for k, v in r.items() if v != "" and k != "step")
    dups = {k: n for k, n in logged.items() if n > 1}
    assert not dups, f"values logged more than once: {dups}"
    assert {int(float(r["step"])) for r in rows if r.get("val/modes")} == set(eval_steps)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    return summary


# one loss of each kind the strategy handles differently: plain, weight clipping after D's
# step, a gradient penalty (double backward); test_losses covers every loss's values
LOSSES = ("nonsaturating", "wgan", "wgan_gp")


@pytest.mark.slow
def test_cli_multirun_each_job_runs_its_own_ranks(tmp_path):
    """`python -m ganlab -m loss=<3 losses> trainer=ddp ... devices=2`: one job per loss
    x 2 ranks, each job in its own directory, written once, nothing stray."""
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable, "-m", "ganlab", "-m", f"loss={','.join(LOSSES)}",
            "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
            "steps=10", "eval_every=5", "logger=csv", f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "Traceback" not in out and "error:" not in out, out[-5000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"], "stray directories"
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == [str(i) for i in range(len(LOSSES))], jobs
    assert (sweep / "report.html").is_file()
    for job, loss in zip(jobs, LOSSES, strict=True):
        summary = _check_run_dir(sweep / job, eval_steps=[5, 10])
        assert summary["steps"] == 10
        overrides = (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert f"loss={loss}" in overrides
    started = "All distributed processes registered. Starting with 2 processes"
    assert out.count(started) == len(LOSSES)


@pytest.mark.slow
def test_single_run_from_python_writes_files_once(tmp_path):
    """compose_config + train with trainer=ddp: rank 1 runs `python -m ganlab` with the
    same overrides as a child, into the same run directory; rank 0 alone writes."""
    from ganlab.train import compose_config, train

    run_dir = tmp_path / "run"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # anything written relative to the working directory shows up here
    try:
        cfg = compose_config(
            ["logger=csv", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
             "steps=10", "eval_every=5"],
            run_dir,
        )  # fmt: skip
        summary = train(cfg)
    finally:
        os.chdir(cwd)
    assert summary["steps"] == 10
    assert "LOCAL_RANK" not in os.environ and not torch.distributed.is_initialized()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "stray directories"
    names = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert names.count("summary.json") == 1 and names.count("metrics.csv") == 1, names
    assert [n for n in names if n.startswith("plots/")] == [
        "plots/step_0000005.png",
        "plots/step_0000010.png",
    ]
    assert not any(n.startswith(".hydra") or n.endswith(".log") for n in names), names
    # the 2,500 evaluation samples were generated in shares by both ranks and gathered:
    # the metrics equal those of one process generating them all from the final weights
    from ganlab.train import build

    _, module, datamodule = build(compose_config(["logger=csv", "steps=10"], tmp_path / "check"))
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    expected = datamodule.data.distribution.evaluate(module.family.generate(2500))
    for key in ("modes", "hq", "rkl", "spread"):
        got = summary["metrics"][f"val/{key}"]
        if not math.isfinite(expected[key]):
            assert got is None, key  # JSON has no inf: the summary holds null
        else:
            assert got == pytest.approx(expected[key], rel=1e-6), key


@pytest.mark.slow
def test_image_gan_with_batchnorm_stays_identical_across_ranks(tmp_path, monkeypatch):
    """Conditional DCGAN (BatchNorm in G and D, labels in the batches) on 2 CPU processes:
    parameters *and* BatchNorm running statistics end bit-identical on both ranks (rank 0's
    buffers are broadcast every step, as DDP's broadcast_buffers does)."""
    from ganlab.train import compose_config, train

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE.parent), *sys.path]))
    states = tmp_path / "states"
    states.mkdir()
    cfg = compose_config(
        ["logger=csv", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         "model=dcgan", "model.conditional=true", "data=digits", "data.image_size=16",
         "model.generator.width=8", "model.discriminator.width=8", "steps=6", "~callbacks.metrics",
         "+callbacks.save._target_=test_ddp.SaveStates", f"+callbacks.save.out={states}"],
        tmp_path / "run",
    )  # fmt: skip
    assert train(cfg)["status"] == "completed"
    final0, final1 = _load(states / "final_rank0.pt"), _load(states / "final_rank1.pt")
    assert any("running_mean" in k for k in final0)
    for key in final0:
        assert torch.equal(final0[key], final1[key]), f"{key} differs between ranks"
    assert (tmp_path / "run" / "samples" / "grid_0000006.png").is_file()


def runner(name: str):
    """The function that fits test case ``name``: (out_dir, devices) -> None."""
    return RUNNERS.get(name) or functools.partial(run_case, name)


if __name__ == "__main__":  # a rank of a multi-process test case: CASE OUT_DIR
    torch.set_num_threads(1)
    # under torchrun with several agents (nodes), its variables say how the ranks are laid out
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", 2))
    nodes = int(os.environ.get("WORLD_SIZE", per_node)) // per_node
    runner(sys.argv[1])(
        Path(sys.argv[2]), devices=per_node, **({"num_nodes": nodes} if nodes > 1 else {})
    )
