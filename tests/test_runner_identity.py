"""The runner redesign changed no behaviour: seeded short runs end with the parameters
(G, D, EMA of G, BatchNorm buffers) that the pre-runner GANModule produced.

``tests/data/runner_reference.pt`` holds the tensors written by the code before the redesign
(commit c0f09a3), with the fingerprint of the machine that wrote them. On that kind of machine
(same CPU features, same torch) the runs must match bit for bit. Elsewhere float rounding
differs (another instruction set rounds one-thread convolutions differently: measured on an
AMD EPYC without AVX-512, G differs by at most 2.1e-6 absolute, 2.3e-5 relative, after the 12
cgan steps), so the runs are compared within ``RTOL``/``ATOL``: 4-5x above that rounding, and
below what a behaviour change does. The controls below show it: an EMA decay of 0.2 instead of
0.9 moves G's average by up to 5.4e-5 (at 12 steps the EMA ramp-up caps the decay near 0.3,
so only a decay below that changes anything); one fewer critic update moves G by 2e-3 and D
likewise. Both fail the comparison.

To see another instruction set on this machine, run torch at AVX2:
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 pytest tests/test_runner_identity.py``
reproduces the AVX2 EPYC's figures above exactly and passes (the old bit-for-bit test failed).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).parent / "data" / "runner_reference.pt"
RTOL, ATOL = 1e-4, 1e-5

#: name -> overrides of the seeded short runs (one thread: a fixed order of reductions)
CGAN = [
    "experiment=cgan_digits",
    "steps=12",
    "data.image_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "eval_every=12",
    "sample_every=12",
    "callbacks.metrics.n_samples=200",
    "callbacks.metrics.n_real=200",
    "threads=1",
]
JOBS = {
    "default": ["steps=150", "threads=1"],
    "wgan_gp_ncritic3": ["loss=wgan_gp", "n_critic=3", "steps=60", "threads=1"],
    "cgan_digits_ema": [*CGAN, "ema=0.9"],
}

Tensors = dict[str, list[torch.Tensor]]


def machine() -> str:
    """What decides the rounding of a seeded one-thread CPU run: torch's build, the SIMD level
    it dispatches to, and the CPU's feature flags."""
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        flags = next((line for line in lines if line.startswith("flags")), "")
    digest = hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:16]
    return f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, flags {digest}"


def final_tensors(run_dir: Path, overrides: list[str]) -> Tensors:
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


def roles(module) -> Tensors:
    """The module's networks by role, parameters then buffers."""
    family = module.family
    ema = family.ema["generator"] if family.ema is not None else None
    nets = {"G": family.generator, "D": family.discriminator, "G_ema": ema}
    return {
        role: [*net.parameters(), *net.buffers()] for role, net in nets.items() if net is not None
    }


def differences(result: Tensors, reference: Tensors, exact: bool) -> list[str]:
    """Each tensor of ``result`` that differs from ``reference``: bit for bit when ``exact``,
    else beyond RTOL/ATOL (integer buffers, such as BatchNorm's batch count, always exactly)."""
    assert sorted(result) == sorted(reference)
    found = []
    for role, tensors in reference.items():
        assert len(result[role]) == len(tensors), role
        for i, (got, want) in enumerate(zip(result[role], tensors, strict=True)):
            if exact or not want.is_floating_point():
                same = torch.equal(got, want)
            else:
                same = torch.allclose(got, want, rtol=RTOL, atol=ATOL)
            if not same:
                found.append(f"{role} tensor {i} (max abs diff {_max_diff(got, want):.2g})")
    return found


def _max_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return (got.double() - want.double()).abs().max().item() if want.numel() else 0.0


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE, weights_only=True)


@pytest.mark.parametrize("job", list(JOBS))
def test_seeded_runs_end_with_the_pre_runner_parameters(job, reference, tmp_path):
    result = final_tensors(tmp_path, JOBS[job])
    exact = reference["machine"] == machine()  # the recording kind of machine: bit for bit
    found = differences(result, reference["jobs"][job], exact)
    assert not found, f"{job} ({'bit for bit' if exact else 'within tolerance'}): {found}"


def test_the_tolerance_passes_rounding_across_cpus(reference):
    """The cross-CPU differences measured on an AVX2-only EPYC (2.1e-6 absolute, 2.3e-5
    relative, on every element at once) pass; a change 10x the tolerance does not."""
    want = reference["jobs"]["cgan_digits_ema"]
    g = torch.Generator().manual_seed(0)

    def shifted(absolute: float, relative: float) -> Tensors:
        """Every float element moved by +-(absolute + relative x its size), signs at random."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if not t.is_floating_point():
                return t.clone()
            sign = torch.where(torch.rand(t.shape, generator=g) < 0.5, -1.0, 1.0)
            return t + sign * (absolute + relative * t.abs())

        return {role: [move(t) for t in tensors] for role, tensors in want.items()}

    assert not differences(shifted(2.1e-6, 0.0), want, exact=False)
    assert not differences(shifted(0.0, 2.3e-5), want, exact=False)
    assert differences(shifted(0.0, 2.3e-5), want, exact=True)  # bit identity would fail
    assert differences(shifted(10 * ATOL, 10 * RTOL), want, exact=False)


@pytest.mark.parametrize(
    "job, change, roles_that_move",
    [
        # at step 12 the ramp-up caps the decay near 0.3 (half-life 0.05 x steps), so 0.9 and 0.95
        # both average alike: the changed decay must be below the cap to change anything
        ("cgan_digits_ema", [*CGAN, "ema=0.2"], {"G_ema"}),  # only the average moves
        ("wgan_gp_ncritic3", [*JOBS["wgan_gp_ncritic3"], "n_critic=2"], {"G", "D", "G_ema"}),
    ],
    ids=["ema_decay", "one_fewer_critic_update"],
)
def test_a_behaviour_change_fails_the_comparison(job, change, roles_that_move, reference, tmp_path):
    found = differences(final_tensors(tmp_path, change), reference["jobs"][job], exact=False)
    assert {line.split()[0] for line in found} == roles_that_move


if __name__ == "__main__":  # re-stamp the machine of the stored tensors (their values are kept)
    stored = torch.load(REFERENCE, weights_only=True)
    jobs = stored.get("jobs", stored)
    import tempfile

    for name, overrides in JOBS.items():  # only where this machine reproduces them exactly
        with tempfile.TemporaryDirectory() as d:
            found = differences(final_tensors(Path(d), overrides), jobs[name], exact=True)
        assert not found, f"{name}: this machine does not reproduce the reference: {found}"
    torch.save({"machine": machine(), "jobs": jobs}, REFERENCE)
    print(f"wrote {REFERENCE} ({machine()})", file=sys.stderr)
