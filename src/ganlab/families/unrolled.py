"""The unrolled GAN (Metz et al. 2017): G's loss is computed against D unrolled k steps ahead.

G minimises f(θ_G, θ_D^k(θ_G)), where θ_D^k is D after k more updates of its own optimizer
from its current parameters and state (Metz et al. 2017, eqs. 7-12). The look-ahead is
functional (``torch.func.functional_call`` on out-of-place parameters, ``ganlab.unroll``):
D's parameters, its optimizer's state and its BatchNorm statistics stay as they are (G's
loss through the unrolled D updates the look-ahead's copy of the statistics, not D's), and
D's real update (the D phase) is the plain one.

As in the reference code (poolio/unrolled_gan), every unrolled update uses the same real
batch (the step's first, which D's update also used) and the same fakes as G's loss. In
the second-order mode G minimises the game's value at the unrolled D: for the zero-sum
losses (minimax, Wasserstein) that includes the real-data term, which depends on G through
the look-ahead (``AdversarialLoss.g_real``); the reference minimises -f of the minimax game.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ganlab import diagnostics as diag
from ganlab.collectives import mean_tensors_over_ranks
from ganlab.families.base import StepContext, full
from ganlab.families.latent import LatentGAN, call_net, conditioned
from ganlab.unroll import FunctionalOptimizer, check_supported

THROUGH = ("none", "full")


class UnrolledGAN(LatentGAN):
    """The latent GAN whose G looks k D updates ahead (Metz et al. 2017).

    Args:
        unroll_steps: k, D updates looked ahead (the paper: 1, 5, 10); 0 is the latent GAN.
        through: ``full``: G's gradient flows through the k updates (the paper's eq. 12,
            second order: the inner D gradients keep their graph); ``none``: first order,
            G's gradient at the unrolled D, whose parameters are constants (the paper's
            approximation that drops the second term of eq. 12).
        *args, **kwargs: those of ``LatentGAN`` (nets, loss, regularizers, pack, ...).

    The look-ahead applies D's loss and its regularizers, as D's own updates do: the
    penalties due on the next D updates, and weight clipping (``Regularizer.constrain``).
    Under DDP each unrolled update averages D's gradients over the processes, as D's real
    update does, so 2 ranks x B equal 1 process x 2B. A conditional model's fakes keep G's
    labels in the look-ahead.
    """

    name = "the unrolled GAN"

    def __init__(self, *args: Any, unroll_steps: int = 5, through: str = "full", **kwargs: Any):
        super().__init__(*args, **kwargs)
        if unroll_steps < 0:
            raise ValueError(f"family.unroll_steps must be >= 0, got {unroll_steps}")
        if through not in THROUGH:
            raise ValueError(f"family.through must be one of {', '.join(THROUGH)}, got {through!r}")
        self.unroll_steps, self.through = unroll_steps, through

    def check_optimizers(self, factories: Mapping[str, Callable[..., Any]]) -> None:
        check_supported(factories["d"]([nn.Parameter(torch.zeros(1))]))

    def _g_loss(self, item: tuple[Tensor, Any], ctx: StepContext) -> tuple[Tensor, dict]:
        """G's loss against D unrolled ``unroll_steps`` updates ahead (its D phase is the
        latent GAN's)."""
        real, y_real = item
        n = real.shape[0]
        y = self.draw_labels(n, ctx.generator)  # drawn as the latent GAN draws them
        fake = self.g(self.sample_z(n, ctx.generator), y)
        state = self.unrolled_parameters(real, y_real, fake, y, ctx)
        # D sees G's fakes (and the reals) as in its own step (``d_view``: augmented)
        net = self._functional(state)
        loss = self.loss.g_loss(full(call_net(net, self.d_view(fake, ctx), y)))
        if self.unroll_steps and self.through == "full":
            # a zero-sum game's real term depends on G through the unrolled D (eq. 12)
            real_term = self.loss.g_real(full(call_net(net, self.d_view(real, ctx), y_real)))
            loss = loss if real_term is None else loss + real_term
        return loss, {diag.G_LOSS: loss.detach()}

    def unrolled_parameters(
        self,
        real: Tensor,
        y_real: Tensor | None,
        fake: Tensor,
        y_fake: Tensor | None,
        ctx: StepContext,
    ) -> dict[str, Tensor]:
        """D's parameters and buffers by name after ``unroll_steps`` updates of D's optimizer
        rule, from copies of its optimizer state (``ctx.optimizers["d"]``) and of its buffers
        (BatchNorm statistics, which G's loss then also updates in the copy). ``full`` keeps
        the graph from ``fake`` through every update; ``none`` returns constants. For k = 0,
        D's own parameters (and buffers): the latent GAN's G loss, bit for bit."""
        d = self.discriminator
        params = dict(d.named_parameters())
        if not self.unroll_steps:
            return params
        rule = FunctionalOptimizer(ctx.optimizers["d"], params)
        buffers = {name: b.clone() for name, b in d.named_buffers()}  # BatchNorm stats: a copy
        second_order = self.through == "full"
        fake = fake if second_order else fake.detach()
        params = {name: p.detach().requires_grad_() for name, p in params.items()}
        first = (ctx.step + 1) * self.n_critic  # the D updates looked ahead: first, first + 1, ...
        for i in range(self.unroll_steps):
            net = self._functional({**params, **buffers})
            loss = self._look_ahead_loss(net, real, y_real, fake, y_fake, first + i, ctx)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=second_order)
            grads = mean_tensors_over_ranks(grads, differentiable=second_order)
            with torch.set_grad_enabled(second_order):
                params = rule.step(params, dict(zip(params, grads, strict=True)))
                for reg in self.regularizers:
                    params = reg.constrain(params)
            if not second_order:
                params = {name: p.requires_grad_() for name, p in params.items()}
        if not second_order:
            params = {name: p.detach() for name, p in params.items()}
        return {**params, **buffers}

    def _functional(self, state: dict[str, Tensor]) -> Callable:
        """D as a function of the tensors ``state`` (parameters and buffers by name; D's own
        for those missing), updating the buffers it holds in place."""

        def net(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            return functional_call(self.discriminator, state, (x, *args), kwargs)

        return net

    def _look_ahead_loss(
        self,
        net: Callable,
        real: Tensor,
        y_real: Tensor | None,
        fake: Tensor,
        y_fake: Tensor | None,
        d_update: int,
        ctx: StepContext,
    ) -> Tensor:
        """D's loss, with the penalties due on D update ``d_update``, for ``net``: the D
        step of D's own updates (``Family.d_step``)."""
        step = self.d_step(
            conditioned(net, y_real),
            real,
            fake,
            ctx,
            update=d_update,
            d_fake=conditioned(net, y_fake),
            penalized=self.penalized(net, y_real),
            observe=False,  # a hypothetical D update: D's regularizer state stays as it is
        )
        return step.loss
