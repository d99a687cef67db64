"""CycleGAN's semantic-consistency option (CyCADA, eq. 4; ``ganlab.families.semantic``):
which classifier labels and which judges, frozen classifiers that are not the metrics',
exact resume with the option on, and a one-line refusal for data without classifiers."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from conftest import (
    MNIST_ROOT,
    assert_one_error_line,
    resumed_equals_uninterrupted,
    run_cli,
)
from ganlab.checkpoints import load_trained
from ganlab.families.semantic import SEED, FrozenClassifier, SemanticConsistency
from ganlab.metrics.classifier import VERSION, DomainClassifier, cache_path
from ganlab.train import build, compose_config

TINY = ["model.generator.width=8", "model.discriminator.width=8", "trainer=cpu", "threads=1"]
NO_METRICS = ["~callbacks.translation", "~callbacks.metrics", "sample_every=1000"]
PLAIN = [
    "family=cyclegan", "data=digits2mnist", f"data.root={MNIST_ROOT}", "data.download=false",
    "data.image_size=16", "data.batch_size=2", "family.pool_size=3", *TINY, *NO_METRICS,
]  # fmt: skip
SEMANTIC = [*PLAIN, "family.semantic_weight=1.0"]


@pytest.fixture(autouse=True)
def planted_mnist_classifier():
    """MNIST's seed-1 classifier at 16 px, with random weights, planted in the session's
    cache: these tests check which classifier is used and how, not its accuracy, and training
    it on MNIST's 60,000 images would cost a minute and a half. The digits' seed-1 classifier
    is trained for real (a few seconds), through the same ``load_or_train``."""
    path = cache_path(f"mnist_seed{SEED}", 16)
    if not path.exists():
        torch.manual_seed(0)
        meta = {"name": f"mnist_seed{SEED}", "image_size": 16, "version": VERSION,
                "num_classes": 10, "accuracy": 1.0, "seed": SEED}  # fmt: skip
        torch.save({"state_dict": DomainClassifier(16, 10).state_dict(), "meta": meta}, path)


class Constant(nn.Module):
    """Logits 10 for ``cls`` and 0 for the other 9 classes, whatever the image."""

    def __init__(self, cls: int) -> None:
        super().__init__()
        self.cls = cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * nn.functional.one_hot(torch.full((len(x),), self.cls), 10).float()


def with_classifiers(a: int, b: int) -> SemanticConsistency:
    sem = SemanticConsistency(16, 10)
    sem.classifiers["a"], sem.classifiers["b"] = (
        FrozenClassifier(Constant(a)),
        FrozenClassifier(Constant(b)),
    )
    return sem


def test_the_input_domain_labels_and_the_output_domain_judges():
    x = torch.zeros(4, 1, 16, 16)
    agree, swap = math.log(1 + 9 * math.exp(-10)), math.log(9 + math.exp(10))
    # A says 3, B says 7: A -> B is judged by B (7) against A's label (3), B -> A the reverse
    sem = with_classifiers(3, 7)
    assert_close(sem("a", x, x), torch.tensor(swap))
    assert_close(sem("b", x, x), torch.tensor(swap))
    sem = with_classifiers(5, 5)
    assert_close(sem("a", x, x), torch.tensor(agree))


def test_frozen_classifier_stays_in_eval_mode_and_takes_no_gradient():
    frozen = FrozenClassifier(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    frozen.train()
    x = torch.randn(8, 1, 6, 6, requires_grad=True)
    frozen(x).square().sum().backward()
    assert not frozen.training and not frozen.net[1].training
    assert x.grad is not None and x.grad.abs().sum() > 0  # G learns through it
    assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())
    for key, value in frozen.state_dict().items():  # BatchNorm's running statistics too
        assert torch.equal(value, before[key]), key


def test_off_by_default_builds_no_classifier(tmp_path):
    cfg = compose_config(["logger=csv", *PLAIN, "steps=1"], tmp_path)
    assert cfg.family.semantic_weight == 0.0
    _, module, _ = build(cfg)
    assert module.family.semantic is None
    assert not any("semantic" in k for k in module.family.state_dict())


def test_semantic_run_trains_g_against_frozen_independent_classifiers(tmp_path):
    cfg = compose_config(["logger=csv", *SEMANTIC, "steps=3", "log_every=1"], tmp_path)
    torch.set_num_threads(1)
    metrics_file = cache_path("digits", 16)  # the metrics' own classifier (other tests make it)
    made = metrics_file.stat().st_mtime_ns if metrics_file.exists() else None
    trainer, module, datamodule = build(cfg)
    family = module.family
    start = {k: v.clone() for k, v in family.semantic.state_dict().items()}
    trainer.fit(module, datamodule=datamodule)
    optimized = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
    assert not any(id(p) in optimized for p in family.semantic.parameters())
    for key, value in family.semantic.state_dict().items():  # weights and BN statistics
        assert torch.equal(value, start[key]), key
    # the cached seed-1 classifiers, not the metrics' seed-0 one (the same file name at seed 0)
    cached = torch.load(cache_path(f"digits_seed{SEED}", 16), weights_only=True)
    assert cached["meta"]["seed"] == SEED
    for key, value in cached["state_dict"].items():
        assert torch.equal(family.semantic.classifiers["a"].net.state_dict()[key], value)
    # the metrics' classifier was neither made nor retrained for the loss
    assert (metrics_file.stat().st_mtime_ns if metrics_file.exists() else None) == made
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    logged = [float(r["train/semantic"]) for r in rows if r.get("train/semantic")]
    assert logged and all(math.isfinite(v) and v > 0 for v in logged)


def test_semantic_weight_changes_what_g_learns(tmp_path):
    def g_after(weight: str, run: str) -> torch.Tensor:
        overrides = ["logger=csv", *SEMANTIC, "steps=2", f"family.semantic_weight={weight}"]
        cfg = compose_config(overrides, tmp_path / run)
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(1)
        trainer, module, datamodule = build(cfg)
        trainer.fit(module, datamodule=datamodule)
        return torch.cat([p.detach().flatten() for p in module.family.g_ab.parameters()])

    assert not torch.equal(g_after("0", "off"), g_after("5", "on"))


def test_semantic_run_resumes_exactly(tmp_path):
    state = resumed_equals_uninterrupted(tmp_path, [*SEMANTIC, "steps=6"], at=3)
    assert any(k.startswith("family.semantic.classifiers.b.") for k in state)
    # the checkpoint commands rebuild the family with its classifiers, from the file alone
    trained = load_trained(tmp_path / "full" / "checkpoints" / "last.ckpt")
    for key, value in trained.family.semantic.state_dict().items():
        assert torch.equal(value, state[f"family.semantic.{key}"]), key


def test_data_without_classifiers_refuses_the_option_in_one_line(tmp_path):
    from test_families import write_domains

    folder = write_domains(tmp_path / "domains")
    result = run_cli("family=cyclegan", "data=unpaired_folder", f"data.path={folder}",
                     "data.image_size=16", "data.num_workers=0", "family.semantic_weight=1",
                     "logger=csv", *TINY, cwd=tmp_path)  # fmt: skip
    assert_one_error_line(
        result,
        "error: family.semantic_weight=1 needs a digit classifier of each domain, but "
        "data=unpaired_folder cannot give one (no domain classifier of A and B): set it to 0 "
        "or choose data=digits2mnist",
    )
    assert "train (G steps)" not in result.stderr


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="semantic_weight must be >= 0, got -1"):
        from ganlab.families import CycleGAN
        from ganlab.losses import LeastSquaresLoss

        CycleGAN(None, None, LeastSquaresLoss(), semantic_weight=-1)
