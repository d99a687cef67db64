"""Adversarial losses and discriminator regularizers.

A loss works on raw discriminator outputs (logits or critic scores): the discriminator
never ends in a sigmoid, and the losses that need one apply it inside, in a numerically
stable form (``softplus``). The training loop calls ``d_loss``/``g_loss`` and never asks
which loss it holds.

A regularizer is applied in the D phase every ``interval`` D updates; a penalty applied
lazily is multiplied by its interval (Karras et al. 2020, StyleGAN2, sec. 3.1, "lazy
regularization").
A regularizer may also penalize D's raw outputs (``output_penalty``) and track them
(``observe``): LeCam (Tseng et al. 2021).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.collectives import mean_tensors_over_ranks


class AdversarialLoss:
    """Interface of an adversarial loss. Subclasses implement ``d_loss`` and ``g_loss``."""

    #: Decision threshold on D's output for the logged D accuracy; ``None`` for critics
    #: whose scores are not a classification (Wasserstein), which log no accuracy.
    threshold: float | None = 0.0
    #: True when G's loss saturates (its gradient vanishes) as D grows confident
    saturating: bool = False

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_real(self, real_out: Tensor) -> Tensor | None:
        """The real-data term of G's objective, or None when G's loss has none. In a
        zero-sum game (minimax, Wasserstein) G minimises the value V = -d_loss, whose real
        term depends on G once D is unrolled (Metz et al. 2017, eq. 12); otherwise it is
        constant for G and left out."""
        return None

    def accuracy(self, real_out: Tensor, fake_out: Tensor) -> Tensor | None:
        """Fraction of real and fake samples D classifies correctly (a diagnostic)."""
        if self.threshold is None:
            return None
        correct = (real_out > self.threshold).sum() + (fake_out <= self.threshold).sum()
        return correct / (real_out.numel() + fake_out.numel())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinimaxLoss(AdversarialLoss):
    """The original saturating GAN loss (Goodfellow et al. 2014, eq. 1).

    G minimises log(1 - D(G(z))), whose gradient vanishes when D rejects the fakes
    confidently: kept for study, use ``NonSaturatingLoss`` to train.
    """

    saturating = True

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        # -log σ(r) - log(1 - σ(f)) = softplus(-r) + softplus(f), stable for any logit
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        # log(1 - σ(f)) = -softplus(f)
        return -F.softplus(fake_out).mean()

    def g_real(self, real_out: Tensor) -> Tensor | None:
        # log σ(r) = -softplus(-r): V = E log D(x) + E log(1 - D(G(z)))
        return -F.softplus(-real_out).mean()


class NonSaturatingLoss(MinimaxLoss):
    """Non-saturating GAN loss (Goodfellow et al. 2014, sec. 3): G maximises log D(G(z))."""

    saturating = False

    def g_loss(self, fake_out: Tensor) -> Tensor:
        # -log σ(f) = softplus(-f)
        return F.softplus(-fake_out).mean()

    def g_real(self, real_out: Tensor) -> Tensor | None:
        return None  # not a zero-sum game: G's loss is of the fakes alone


class WassersteinLoss(AdversarialLoss):
    """Wasserstein GAN critic loss (Arjovsky et al. 2017, eq. 3).

    Needs a Lipschitz constraint: weight clipping (``WeightClipping``) or a gradient
    penalty (``GradientPenalty``).
    """

    threshold = None

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()

    def g_real(self, real_out: Tensor) -> Tensor | None:
        return real_out.mean()  # V = E D(x) - E D(G(z))


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16)."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()


class LeastSquaresLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017, eq. 2 with a=0, b=c=1)."""

    threshold = 0.5

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return 0.5 * (real_out - 1).pow(2).mean() + 0.5 * fake_out.pow(2).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return 0.5 * (fake_out - 1).pow(2).mean()


# --------------------------------------------------------------------------- regularizers


class Regularizer(nn.Module):
    """A D-phase regularizer: a penalty added to D's loss and/or a hook after D's update.

    A module, so state it keeps (LeCam's anchors) is a buffer of the family: saved in the
    checkpoint, restored on resume, moved with the nets.

    Args:
        weight: multiplier of the penalty.
        interval: apply every ``interval`` D updates; the penalty is scaled by ``interval``
            so its average strength does not depend on it (lazy regularization).
    """

    #: True when the penalty differentiates D's output with respect to its input, which
    #: BatchNorm in D would couple across the batch (Gulrajani et al. 2017, sec. 4).
    needs_input_gradient = False

    def __init__(self, weight: float = 1.0, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f"{type(self).__name__}: interval must be >= 1, got {interval}")
        if weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be >= 0, got {weight}")
        super().__init__()
        self.weight = float(weight)
        self.interval = int(interval)

    def penalty(
        self, d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None
    ) -> Tensor | None:
        """The penalty to add to D's loss on this update, or None. Randomness, if any,
        comes from ``generator`` (the module's step-seeded stream: exact resume)."""
        return None

    def output_penalty(self, real_out: Tensor, fake_out: Tensor) -> Tensor | None:
        """The penalty on D's raw outputs (float32, with their graph) of this update, or
        None; due, and scaled, as ``penalty`` is."""
        return None

    def observe(self, real_out: Tensor, fake_out: Tensor) -> None:
        """Sees D's raw outputs (detached) of every D update, before its penalties: for
        state that tracks D (LeCam's anchors). Not called for hypothetical D updates (the
        unrolled GAN's look-ahead)."""

    @torch.no_grad()
    def after_d_step(self, d: nn.Module) -> None:
        """Called after every D optimizer step."""

    def constrain(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """What ``after_d_step`` does, out of place, to D's parameters by name (for D updates
        made functionally: the unrolled GAN's look-ahead)."""
        return params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, interval={self.interval})"


def _input_gradient(d: nn.Module, x: Tensor) -> Tensor:
    """∇_x D(x) per sample, flattened to (B, features), with a graph for double backward."""
    x = x.detach().requires_grad_(True)
    out = d(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)  # (B, features)


class GradientPenalty(Regularizer):
    """WGAN-GP two-sided penalty (Gulrajani et al. 2017, eq. 3): λ E[(‖∇D(x̂)‖ - 1)²]
    on random interpolates x̂ of real and fake samples."""

    needs_input_gradient = True

    def __init__(self, weight: float = 10.0, interval: int = 1, target: float = 1.0) -> None:
        super().__init__(weight, interval)
        self.target = float(target)

    def penalty(
        self, d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
        x_hat = eps * real + (1 - eps) * fake.detach()
        grad = _input_gradient(d, x_hat)
        return self.weight * (grad.norm(dim=1) - self.target).pow(2).mean()


class R1Penalty(Regularizer):
    """R1 penalty on real data (Mescheder et al. 2018, eq. 9): γ/2 E[‖∇D(x)‖²]."""

    needs_input_gradient = True

    def penalty(
        self, d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        grad = _input_gradient(d, real)
        return 0.5 * self.weight * grad.pow(2).sum(dim=1).mean()


class LeCam(Regularizer):
    """LeCam regularization (Tseng et al. 2021, eq. 3): λ (E[(D(x) - α_F)²] + E[(D(G(z)) -
    α_R)²]), with α_R, α_F exponential moving averages of D's mean output on real and on
    fake samples. It keeps D's outputs near the values it gave the other side of late, which
    bounds the LeCam divergence that D's objective then minimises; it helps most with little
    data.

    As in the authors' code (google/lecam-gan, ``lecam_loss.py``), the anchors are updated
    with the update's batch means before the penalty (decay 0.99), from zero and with
    TensorFlow's zero-debias (divided by 1 - decay^t after t updates); the penalty is
    eq. 3's squares (their code keeps only the one-sided parts, relu(D(x) - α_F) and
    relu(α_R - D(G(z)))). Under data parallelism the batch means are averaged over the
    processes, so every rank holds the same anchors.

    Args:
        weight: λ. The paper uses 0.3 for BigGAN (hinge loss) on CIFAR and 0.01 for
            StyleGAN2 (logistic loss, whose logits are larger); the default 0.01 suits
            ganlab's default, non-saturating (logistic) loss.
        interval: lazy regularization, as for every regularizer (the anchors are updated on
            every D update).
        decay: the anchors' EMA decay per D update.
    """

    def __init__(self, weight: float = 0.01, interval: int = 1, decay: float = 0.99) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCam: decay must be in [0, 1), got {decay}")
        super().__init__(weight, interval)
        self.decay = float(decay)
        # biased EMAs of the batch means of D(x), D(G(z)), and the updates seen (debiasing)
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def anchors(self) -> tuple[Tensor, Tensor]:
        """(α_R, α_F): the zero-debiased EMAs of D's mean output on real and on fake."""
        debias = 1 - self.decay ** self.updates.clamp_min(1).double()
        return self.ema_real / debias.float(), self.ema_fake / debias.float()

    @torch.no_grad()
    def observe(self, real_out: Tensor, fake_out: Tensor) -> None:
        means = mean_tensors_over_ranks([real_out.mean(), fake_out.mean()], differentiable=False)
        self.ema_real.lerp_(means[0].to(self.ema_real), 1 - self.decay)
        self.ema_fake.lerp_(means[1].to(self.ema_fake), 1 - self.decay)
        self.updates += 1

    def output_penalty(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        alpha_real, alpha_fake = self.anchors
        # Tseng et al. 2021, eq. 3: R_LC = E‖D(x) - α_F‖² + E‖D(G(z)) - α_R‖²
        reg = (real_out - alpha_fake).pow(2).mean() + (fake_out - alpha_real).pow(2).mean()
        return self.weight * reg

    def __repr__(self) -> str:
        return f"LeCam(weight={self.weight}, interval={self.interval}, decay={self.decay})"


class WeightClipping(Regularizer):
    """Clip every D parameter to [-clip, clip] after each update (Arjovsky et al. 2017, Alg. 1)."""

    def __init__(self, clip: float = 0.01) -> None:
        if clip <= 0:
            raise ValueError(f"WeightClipping: clip must be > 0, got {clip}")
        super().__init__(weight=0.0, interval=1)
        self.clip = float(clip)

    @torch.no_grad()
    def after_d_step(self, d: nn.Module) -> None:
        for p in d.parameters():
            p.clamp_(-self.clip, self.clip)

    def constrain(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: p.clamp(-self.clip, self.clip) for name, p in params.items()}

    def __repr__(self) -> str:
        return f"WeightClipping(clip={self.clip})"
