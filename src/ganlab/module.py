"""GANModule: the training step of a GAN, as phases, with manual optimization.

One ganlab *step* is one generator update: ``n_critic`` discriminator updates, each on a
fresh real batch and fresh z, then one generator update through D. The module never
asks which loss, regularizer or network it holds.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from ganlab.collectives import average_gradients, broadcast_buffers, grad_norm, mean_over_ranks
from ganlab.loggers import log_now
from ganlab.losses import AdversarialLoss, Regularizer
from ganlab.rng import stream_seed

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
LATENT_DISTS = ("normal", "uniform")


def _check_optimizer(name: str, factory: OptimizerFactory) -> None:
    """Build the optimizer once on a dummy parameter so a bad lr fails now, not mid-fit."""
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: {err}") from None


def draw_latent(n: int, dim: int, dist: str, generator: torch.Generator) -> Tensor:
    """``n`` latent vectors (n, dim) from N(0, I) or U[0, 1), on the generator's device."""
    if dist == "uniform":
        return torch.rand((n, dim), generator=generator, device=generator.device)
    return torch.randn((n, dim), generator=generator, device=generator.device)


def eval_seed(seed: int) -> int:
    """Seed of the evaluation z (grids, metrics, the sample command): one stream per run seed."""
    return seed + 1


def call_net(net: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """``net(x)``, or ``net(x, y)`` for a class-conditional network."""
    return net(x) if y is None else net(x, y)


def _full(out: Tensor) -> Tensor:
    """D's raw output in at least float32 for the loss (it is bf16/fp16 under autocast)."""
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


def split_batch(batch: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
    """A training item as (samples, labels or None): labelled sets yield ``(x, y)``."""
    if isinstance(batch, Tensor):
        return batch, None
    x, y = batch
    return x, y


class GANModule(pl.LightningModule):
    """Alternates ``n_critic`` D updates and one G update per training step.

    Args:
        generator: maps z (B, latent_dim) to samples; ``generator(z, y)`` when conditional.
        discriminator: maps samples to raw scores (B, 1); no final sigmoid;
            ``discriminator(x, y)`` when conditional.
        loss: adversarial loss with ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)``.
        optimizer_g, optimizer_d: partial optimizer factories taking parameters.
        latent_dim: dimension of z.
        latent_dist: ``normal`` (N(0, I)) or ``uniform`` (U[0, 1)).
        n_critic: D updates per G update (k in Goodfellow et al. 2014, Alg. 1).
        regularizers: D-phase regularizers (gradient penalty, R1, weight clipping).
        seed: seed of the latent-noise generator (each DDP rank adds its rank).
        ema: decay per G step of an exponential moving average of G's weights, used for
            samples and metrics (0 = off; 0.999 is typical).
        ema_rampup: ramp-up of the EMA as in StyleGAN2-ADA (Karras et al. 2020,
            ``training_loop.py``): the half-life of the average, ln 0.5 / ln ema steps, is
            capped at ``ema_rampup`` x the steps done, so early averages do not remember the
            initialization (None = no ramp-up).
        num_classes: classes of a class-conditional G and D (0 = unconditional). D updates
            pair fakes with the real batch's labels (so a gradient penalty interpolates
            within a class); G updates draw labels uniformly.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: AdversarialLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        latent_dim: int,
        latent_dist: str = "normal",
        n_critic: int = 1,
        regularizers: Sequence[Regularizer] = (),
        seed: int = 0,
        ema: float = 0.0,
        ema_rampup: float | None = 0.05,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1 (D updates per G update), got {n_critic}")
        if latent_dist not in LATENT_DISTS:
            raise ValueError(f"latent_dist must be one of {LATENT_DISTS}, got {latent_dist!r}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        if ema_rampup is not None and ema_rampup <= 0:
            raise ValueError(f"ema_rampup must be > 0 or None, got {ema_rampup}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}")
        _check_optimizer("optimizer_g", optimizer_g)
        _check_optimizer("optimizer_d", optimizer_d)
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.loss, self.regularizers = loss, list(regularizers)
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.latent_dim, self.latent_dist = latent_dim, latent_dist
        self.n_critic, self.seed, self.ema = n_critic, seed, ema
        self.ema_rampup, self.num_classes = ema_rampup, num_classes
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema else None
        self.g_step = 0  # generator updates done: ganlab's step counter
        self.status = "running"  # -> "diverged" here, "interrupted" by the Checkpoint callback
        self._z_gen: torch.Generator | None = None
        self.last: dict[str, Tensor] = {}  # latest diagnostics, for callbacks
        # how to rebuild the networks (plain containers, set by the entry point): saved in
        # checkpoints for the sample/evaluate commands
        self.build_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ sampling
    def z_generator(self) -> torch.Generator:
        """The generator of training z; reseeded from (seed, rank, step) at every step,
        so a resumed run draws the same z as an uninterrupted one on every rank."""
        if self._z_gen is None or self._z_gen.device != self.device:
            self._z_gen = torch.Generator(device=self.device)
        return self._z_gen

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latent vectors (n, latent_dim) on the module's device."""
        gen = generator if generator is not None else self.z_generator()
        return draw_latent(n, self.latent_dim, self.latent_dist, gen)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """``n`` class labels drawn uniformly (None for an unconditional model)."""
        if not self.num_classes:
            return None
        gen = generator if generator is not None else self.z_generator()
        return torch.randint(self.num_classes, (n,), generator=gen, device=self.device)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return call_net(self.generator, z, y)

    def fixed_z(self, n: int) -> Tensor:
        """The evaluation z: the same ``n`` vectors at every call and on every rank."""
        generator = torch.Generator(device=self.device).manual_seed(eval_seed(self.seed))
        return self.sample_z(n, generator)

    def fixed_labels(self, n: int) -> Tensor | None:
        """The evaluation labels: 0, 1, ..., C-1, 0, 1, ... (classes equally represented)."""
        if not self.num_classes:
            return None
        return torch.arange(n, device=self.device) % self.num_classes

    @torch.no_grad()
    def generate(
        self,
        n: int,
        z: Tensor | None = None,
        y: Tensor | None = None,
        batch_size: int = 10_000,
    ) -> Tensor:
        """``n`` samples (or G(z, y) for a given z) from the EMA generator when there is
        one, else from G, in eval mode and without gradients. The default z and labels are
        the same at every call (seeded by ``seed``), so evaluations compare like with like."""
        net = self.generator_ema if self.generator_ema is not None else self.generator
        was_training = net.training
        net.eval()
        z = self.fixed_z(n) if z is None else z
        y = self.fixed_labels(len(z)) if y is None else y
        zs = z.split(batch_size)
        ys = [None] * len(zs) if y is None else y.split(batch_size)
        out = torch.cat([call_net(net, zc, yc) for zc, yc in zip(zs, ys, strict=True)])
        net.train(was_training)
        return out

    def ema_beta(self, step: int) -> float:
        """EMA decay at G step ``step``: ``ema``, with its half-life capped at
        ``ema_rampup`` x (step + 1) steps (StyleGAN2-ADA's ramp-up)."""
        if self.ema_rampup is None:
            return self.ema
        half_life = math.log(0.5) / math.log(self.ema)  # in G steps
        return 0.5 ** (1.0 / min(half_life, self.ema_rampup * (step + 1)))

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.ema_beta(self.g_step)
        ema_params = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.generator.parameters()), 1.0 - beta)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.optimizer_g(self.generator.parameters()),
            self.optimizer_d(self.discriminator.parameters()),
        ]

    def training_step(self, batch: Tensor | Sequence[Tensor], batch_idx: int) -> None:
        # reals: (n_critic, B, ...) samples, one batch per D update; labels: (n_critic, B)
        reals, labels = split_batch(batch)
        if reals.shape[0] != self.n_critic:
            raise ValueError(
                f"expected {self.n_critic} real batches per step, got {reals.shape[0]}"
            )
        if self.num_classes and labels is None:
            raise ValueError("a class-conditional model needs labelled data, got no labels")
        opt_g, opt_d = self.optimizers()
        self.z_generator().manual_seed(stream_seed(self.seed, self.global_rank, self.g_step))
        stats: dict[str, Tensor] = {}
        for i, real in enumerate(reals):
            y = labels[i] if self.num_classes else None
            stats = self._d_step(real, y, opt_d, self.g_step * self.n_critic + i)
        stats.update(self._g_step(opt_g, reals.shape[1]))
        stats = mean_over_ranks(stats, self.trainer.world_size)
        for net in (self.generator, self.discriminator):
            broadcast_buffers(net, self.trainer.world_size)
        if self.generator_ema is not None:
            self._update_ema()
        self.g_step += 1
        self.last = stats
        if not self._finite(stats):
            return
        if self.g_step % self.trainer.log_every_n_steps == 0:
            self._log_diagnostics(stats, opt_g, opt_d)

    def _grad_scaler(self) -> Any:
        """The loss scaler of ``16-mixed`` precision, or None."""
        return getattr(self.trainer.precision_plugin, "scaler", None)

    def _grad_norm(self, net: nn.Module) -> Tensor:
        """Gradient norm of ``net`` in the loss's units (16-mixed gradients are scaled)."""
        scaler = self._grad_scaler()
        norm = grad_norm(net)
        return norm / scaler.get_scale() if scaler is not None else norm

    def _finite(self, stats: dict[str, Tensor]) -> bool:
        """Stop the run at the first non-finite loss or gradient (NaN/Inf spreads to the
        parameters at the next update, so this catches a diverged parameter too). Under
        16-mixed an overflowing gradient is the scaler's business: it skips that update."""
        keys = ("d_loss", "g_loss", "grad_norm/d", "grad_norm/g")
        if self._grad_scaler() is not None:
            keys = keys[:2]
        if torch.isfinite(torch.stack([stats[k] for k in keys])).all():
            return True
        self.status = "diverged"
        self.trainer.should_stop = True
        values = ", ".join(f"{k}={float(stats[k]):.3g}" for k in keys)
        log.error(
            "diverged at step %d (%s): stopping this run; no checkpoint is written",
            self.g_step,
            values,
        )
        return False

    def _d_step(self, real: Tensor, y: Tensor | None, opt: Any, d_update: int) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = call_net(self.generator, self.sample_z(real.shape[0]), y)
        # raw outputs in float32 for the loss, also under mixed precision
        real_out = _full(call_net(self.discriminator, real, y))
        fake_out = _full(call_net(self.discriminator, fake, y))
        loss = self.loss.d_loss(real_out, fake_out)
        penalty = self._regularize(real, fake, d_update, y)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss if penalty is None else loss + penalty)
        average_gradients(self.discriminator, self.trainer.world_size)
        stats = {"d_loss": loss.detach(), "grad_norm/d": self._grad_norm(self.discriminator)}
        opt.step()
        for reg in self.regularizers:
            reg.after_d_step(self.discriminator)
        stats["d_real"], stats["d_fake"] = real_out.detach().mean(), fake_out.detach().mean()
        accuracy = self.loss.accuracy(real_out.detach(), fake_out.detach())
        if accuracy is not None:
            stats["d_acc"] = accuracy
        if penalty is not None:
            stats["penalty"] = penalty.detach()
        return stats

    def _regularize(
        self, real: Tensor, fake: Tensor, d_update: int, y: Tensor | None = None
    ) -> Tensor | None:
        """Sum of the penalties due on this D update, each scaled by its interval."""
        total = None
        d = self.discriminator if y is None else functools.partial(self.discriminator, y=y)
        for reg in self.regularizers:
            if d_update % reg.interval:
                continue
            penalty = reg.penalty(d, real, fake, self.z_generator())
            if penalty is not None:
                penalty = reg.interval * penalty
                total = penalty if total is None else total + penalty
        return total

    def _g_step(self, opt: Any, n: int) -> dict[str, Tensor]:
        # D's parameters take no gradient here: they are neither updated nor accumulate
        self.discriminator.requires_grad_(False)
        y = self.sample_labels(n)
        fake_out = call_net(self.discriminator, call_net(self.generator, self.sample_z(n), y), y)
        loss = self.loss.g_loss(_full(fake_out))
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        average_gradients(self.generator, self.trainer.world_size)
        stats = {"g_loss": loss.detach(), "grad_norm/g": self._grad_norm(self.generator)}
        opt.step()
        self.discriminator.requires_grad_(True)
        return stats

    def _log_diagnostics(self, stats: dict[str, Tensor], opt_g: Any, opt_d: Any) -> None:
        metrics = {f"train/{k}": float(v) for k, v in stats.items()}
        metrics["train/lr/g"] = opt_g.param_groups[0]["lr"]
        metrics["train/lr/d"] = opt_d.param_groups[0]["lr"]
        log_now(self.trainer, metrics, self.g_step)
        self.trainer.progress_bar_metrics.update(
            d_loss=round(metrics["train/d_loss"], 4), g_loss=round(metrics["train/g_loss"], 4)
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganlab"] = {
            "g_step": self.g_step,
            "torch_rng": torch.get_rng_state(),  # for user code (dropout, ...); ganlab's own
            # streams (data, z, penalty weights) are reseeded from (seed, rank, step)
            "run_ids": {type(lg).__name__: str(lg.version) for lg in self.loggers},
            **self.build_info,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["ganlab"]
        self.g_step = state["g_step"]
        torch.set_rng_state(state["torch_rng"].cpu())
