"""The names of the per-step training diagnostics, written once.

A phase's loss returns its diagnostics as detached scalar tensors by these keys; the runner
(``ganlab.module``) adds each optimizer's gradient norm, keeps them (``GANModule.last``) for
the callbacks (the health flags) and logs them as ``train/<key>`` at the logging interval;
the metric registry labels them in tables and figures.
"""

from __future__ import annotations

#: group of the logged diagnostics: ``train/<key>``
TRAIN = "train/"
#: D's loss: the adversarial loss of a D phase (CycleGAN: of both Ds, penalties included)
D_LOSS = "d_loss"
#: G's loss: everything G's update backpropagates
G_LOSS = "g_loss"
#: D's mean raw output on the real and on the fake samples of its update
D_REAL, D_FAKE = "d_real", "d_fake"
#: fraction of real and fake samples D classifies correctly (not for a critic)
D_ACC = "d_acc"
#: the due penalties of the D regularizers (each x its interval), when one is due
PENALTY = "penalty"
#: the adversarial part of G's loss, when it has other terms
G_ADV = "g_adv"
#: Pix2Pix: L1 of G's output to the target
L1 = "l1"
#: CycleGAN: the cycle-consistency and identity losses
CYCLE, IDENTITY = "cycle", "identity"
#: CycleGAN with the semantic-consistency loss (CyCADA): both directions' cross-entropy
SEMANTIC = "semantic"
#: the suffix of the keys that are losses (a non-finite one means divergence)
LOSS_SUFFIX = "_loss"
#: the prefix of the gradient norms the runner adds, one per optimizer
GRAD_NORM = "grad_norm/"


def grad_norm(optimizer: str) -> str:
    """The key of the gradient norm of ``optimizer``'s parameters: ``grad_norm/<name>``."""
    return f"{GRAD_NORM}{optimizer}"


#: G's and D's gradient norms (the health callback reads G's)
GRAD_NORM_G, GRAD_NORM_D = grad_norm("g"), grad_norm("d")


def phase_loss(name: str) -> str:
    """The key of the loss of the phase ``name`` (``d_loss``, ``g_loss``)."""
    return f"{name}{LOSS_SUFFIX}"


def part_loss(part: str) -> str:
    """The key of one D's loss in a family of several (CycleGAN: ``d_a_loss``)."""
    return f"d_{part}{LOSS_SUFFIX}"


def part_accuracy(part: str) -> str:
    """The key of one D's accuracy in a family of several (CycleGAN: ``d_acc_a``)."""
    return f"{D_ACC}_{part}"


def logged(key: str) -> str:
    """The key as logged: ``train/<key>``."""
    return f"{TRAIN}{key}"


def learning_rate(optimizer: str) -> str:
    """The logged key of ``optimizer``'s learning rate: ``train/lr/<name>``."""
    return f"{TRAIN}lr/{optimizer}"
