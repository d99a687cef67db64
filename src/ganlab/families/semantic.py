"""Semantic consistency for unpaired translation (CyCADA, Hoffman et al. 2018, eq. 4): a
frozen classifier must give a translation the class it gives the translation's input.

CycleGAN's cycle loss only asks that G_BA can undo G_AB; a G_AB that turns every 4 into a 9
(and a G_BA that turns it back) satisfies it. Eq. 4 penalises that swap:

    L_sem = CE(f_B(G_AB(a)), argmax f_A(a)) + CE(f_A(G_BA(b)), argmax f_B(b))

- the pseudo-label of an input is the class the classifier *of the input's domain* gives it
  (never a data label: CycleGAN stays unsupervised in its images; the classifiers are
  where labels enter, as in CyCADA);
- the translation is judged by the classifier *of the output's domain*, the only one that
  was trained on images like it. CyCADA uses its source classifier f_S on both sides
  because its target domain has no labels; when both domains give a classifier, each one
  sees only images of the domain it was trained on. The price: labels of both domains
  enter (through the classifiers), where CyCADA uses the source's only.

The classifiers are ``ganlab.metrics.classifier.DomainClassifier``s trained on each
domain's training split with seed ``SEED``, cached as ``<domain classifier>_seed1`` (e.g.
``classifier_mnist_seed1_32px_v1.pt``): independent of the seed-0 classifiers that score
label preservation (``val/*/label_acc``), so the loss does not train for the metric's own
classifier. They share its architecture and data, so the metric is not blind to what the
loss teaches: compare a semantic run with a plain one, and with a judge that shares nothing
with them (``benchmarks/translation.py``'s pixel-space 3-NN).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.data.choices import data_choices
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.metrics.classifier import SIZES, DomainClassifier, load_or_train

log = logging.getLogger(__name__)

#: the seed of the semantic classifiers (the metrics' classifiers use seed 0)
SEED = 1


class FrozenClassifier(nn.Module):
    """A classifier that training never changes: its weights take no gradients and it stays
    in eval mode (BatchNorm's running statistics, never the batch's) whatever mode its
    family is put in; gradients still flow through it to its input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> FrozenClassifier:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, 1, S, S) in [-1, 1] -> logits (B, K)."""
        return self.net(x)


class SemanticConsistency(nn.Module):
    """Eq. 4 of CyCADA with a frozen classifier per domain (``classifiers["a"]``, ``["b"]``).

    Built from the data's spec (``check`` first); the weights come from ``load`` (the cache,
    else trained once) before training, and from the checkpoint when a run resumes or a
    checkpoint is rebuilt: they are part of the family's state, so a resumed run uses
    the very weights it started with, whatever the cache holds by then.
    """

    def __init__(self, image_size: int, num_classes: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # placeholders: the global stream untouched
            self.classifiers = nn.ModuleDict(
                {d: FrozenClassifier(DomainClassifier(image_size, num_classes)) for d in "ab"}
            )

    @staticmethod
    def check(spec: DataSpec, option: str, data: str | None) -> None:
        """``UserError`` (one line) unless both domains of ``spec`` give a domain classifier
        of the same classes at a size it is made for; ``option`` and ``data`` (the choices)
        name things in the message."""
        names = spec.classifiers
        missing = [d.upper() for d in "ab" if names.get(d) is None]
        reason = (
            f"no domain classifier of {' and '.join(missing)}" if missing
            else "the domains do not share their classes" if not spec.labelled
            else f"image_size={spec.shapes['a'][-1]} has no classifier (use {SIZES})"
            if spec.shapes["a"][-1] not in SIZES
            else None
        )  # fmt: skip
        if reason is not None:
            fits = "|".join(data_choices("domains", labelled=True)) or "..."
            raise UserError(
                f"{option} needs a digit classifier of each domain, but data={data or '...'} "
                f"cannot give one ({reason}): set it to 0 or choose data={fits}"
            )

    def load(self, data: Any) -> None:
        """Each domain's semantic classifier from ``data.domain_data(d)``: cached, or trained
        on its training split with seed ``SEED`` (about a minute for MNIST on one CPU
        thread) and cached."""
        for d, frozen in self.classifiers.items():
            domain = data.domain_data(d)
            net, meta = load_or_train(f"{domain.classifier}_seed{SEED}", domain, seed=SEED)
            frozen.net.load_state_dict(net.state_dict())
            log.info(
                "Semantic classifier of domain %s: %s (held-out accuracy %.4f)",
                d.upper(), meta["path"], meta["accuracy"],
            )  # fmt: skip

    def forward(self, source: str, inputs: Tensor, translations: Tensor) -> Tensor:
        """CE(f_dst(translations), argmax f_src(inputs)) of the direction from domain
        ``source`` ("a" or "b") to the other one."""
        target = "b" if source == "a" else "a"
        with torch.no_grad():
            labels = self.classifiers[source](inputs).argmax(1)  # (B,) pseudo-labels
        return F.cross_entropy(self.classifiers[target](translations).float(), labels)
