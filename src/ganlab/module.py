"""GANModule: the runner of a GAN family's phases, with manual optimization.

One ganlab *step* is one generator update. The family (``ganlab.families``) lists its
phases as data (StyleGAN2-ADA's ``training_loop.py``): for each due phase, and each of its
repeats, the runner trains only that phase's nets, backpropagates the family's loss,
averages the gradients over processes and steps the phase's optimizer. Then it shares
BatchNorm statistics and diagnostics across processes, updates the EMA of the nets the
family averages, watches for divergence and logs. It never names a family, a loss or a net.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from ganlab import diagnostics as diag
from ganlab.collectives import average_gradients, broadcast_buffers, grad_norm, mean_over_ranks
from ganlab.families.base import Family, Phase, StepContext
from ganlab.loggers import log_now
from ganlab.rng import stream_seed

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
GLOBAL_STREAM = 1  # key of torch's global random stream among ganlab's streams


def _check_optimizer(name: str, factory: OptimizerFactory) -> None:
    """Build the optimizer once on a dummy parameter so a bad lr fails now, not mid-fit."""
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise ValueError(f"optimizer_{name}: {err}") from None


class GANModule(pl.LightningModule):
    """Runs a family's phases: one training step = every due phase, each ``repeats`` times.

    Args:
        family: the GAN (its nets already built for the data, see ``Family``).
        optimizers: optimizer name -> partial factory taking parameters, for every optimizer
            the family's phases step (``g`` and ``d``).
        seed: seed of the step's random stream (z, labels, penalties); each rank adds its rank.
        ema: decay per G step of an exponential moving average of the nets the family
            averages (its generators), used for samples and metrics (0 = off; 0.999 typical).
        ema_rampup: ramp-up of the EMA as in StyleGAN2-ADA (Karras et al. 2020,
            ``training_loop.py``): the half-life of the average, ln 0.5 / ln ema steps, is
            capped at ``ema_rampup`` x the steps done, so early averages do not remember the
            initialization (None = no ramp-up).
        compile: compile the trained nets with ``torch.compile`` (their forward and, through
            AOTAutograd, backward graphs; state dict keys unchanged) when fitting starts; on
            a GPU with mode ``reduce-overhead`` (CUDA graphs). The EMA averages, used only
            for sampling, stay eager. Not with a penalty's double backward.
    """

    def __init__(
        self,
        family: Family,
        optimizers: Mapping[str, OptimizerFactory],
        seed: int = 0,
        ema: float = 0.0,
        ema_rampup: float | None = 0.05,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if compile and family.double_backward:
            raise ValueError(
                "compile=true: a gradient penalty differentiates D's gradient (double "
                "backward), which compiled nets do not support; set compile=false"
            )
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        if ema_rampup is not None and ema_rampup <= 0:
            raise ValueError(f"ema_rampup must be > 0 or None, got {ema_rampup}")
        missing = sorted(set(family.optimized_nets()) - set(optimizers))
        if missing:
            raise ValueError(f"{family.name} steps optimizers {missing}: add optim.{missing[0]}")
        for name in family.optimized_nets():
            _check_optimizer(name, optimizers[name])
        family.check_optimizers(optimizers)
        self.automatic_optimization = False
        self.family = family
        self.optimizer_factories = dict(optimizers)
        self.seed, self.ema, self.ema_rampup = seed, ema, ema_rampup
        self.compile = compile
        if ema:
            family.enable_ema()
        self.g_step = 0  # generator updates done: ganlab's step counter
        self.status = "running"  # -> "diverged" here, "interrupted" by the Checkpoint callback
        self.diverged_at: int | None = None
        self._rng: torch.Generator | None = None
        self._first_bad: Tensor | None = None  # first non-finite step, on the device (-1: none)
        self.last: dict[str, Tensor] = {}  # latest diagnostics, for callbacks
        self._param_lists: dict[str, list[nn.Parameter]] = {}  # optimizer -> its parameters
        # how to rebuild the family (plain containers, set by the entry point): saved in
        # checkpoints for the sample/evaluate commands
        self.build_info: dict[str, Any] = {}

    def on_fit_start(self) -> None:
        self._param_lists = {}
        if self.compile:  # on the training device; in place, so the state dict keeps its keys
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            for net in chain.from_iterable(self.family.optimized_nets().values()):
                net.compile(mode=mode)

    # ------------------------------------------------------------------ randomness
    def rng(self) -> torch.Generator:
        """The step's random stream (z, labels, penalty weights); reseeded from (seed, rank,
        step) at every step, so a resumed run draws what an uninterrupted one would."""
        if self._rng is None or self._rng.device != self.device:
            self._rng = torch.Generator(device=self.device)
        return self._rng

    # ------------------------------------------------------------------ EMA
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
        for net, average in self.family.ema_pairs():
            torch._foreach_lerp_(list(average.parameters()), list(net.parameters()), 1.0 - beta)
            for b_avg, b in zip(average.buffers(), net.buffers(), strict=True):
                b_avg.copy_(b)

    # ------------------------------------------------------------------ training
    def _params(self, optimizer: str) -> list[nn.Parameter]:
        """The parameters of ``optimizer``'s nets, in order; listed once per fit (moving,
        compiling or loading the nets keeps their parameter objects)."""
        if optimizer not in self._param_lists:
            nets = self.family.optimized_nets()[optimizer]
            self._param_lists[optimizer] = list(chain.from_iterable(n.parameters() for n in nets))
        return self._param_lists[optimizer]

    def _seed_torch(self, seed: int) -> None:
        """Seed torch's default generator of the training device, as ``torch.manual_seed``
        would, without its extra work (it also queues a seed, with a formatted stack, for
        every CUDA, XPU and MTIA device that might start later: ~80 us a call on a CPU)."""
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or 0].manual_seed(seed)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        names = self.family.optimized_nets()
        return [self.optimizer_factories[name](self._params(name)) for name in names]

    def _optimizers(self) -> dict[str, Any]:
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]  # Lightning unwraps a single one
        return dict(zip(self.family.optimized_nets(), opts, strict=True))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        opts = self._optimizers()
        generator = self.rng()
        generator.manual_seed(stream_seed(self.seed, self.global_rank, self.g_step))
        # torch's own stream (dropout in a net) too: a resumed run draws what an uninterrupted
        # one would, whatever else used it in between (a DataLoader drawing its base seed)
        self._seed_torch(stream_seed(self.seed, self.global_rank, self.g_step, GLOBAL_STREAM))
        ctx = StepContext(
            self.g_step, generator, optimizers={k: o.optimizer for k, o in opts.items()}
        )
        stats: dict[str, Tensor] = {}
        for phase in self.family.phases():
            if self.g_step % phase.interval:
                continue
            ctx.phase = phase
            for ctx.repeat in range(phase.repeats):
                item = self.family.batch_item(batch, ctx.repeat)
                phase_stats = self._update(phase, item, opts[phase.optimizer], ctx)
            stats.update(phase_stats)  # the last repeat's diagnostics
        self._train_only(None)
        stats = mean_over_ranks(stats, self.trainer.world_size)
        for net in chain.from_iterable(self.family.optimized_nets().values()):
            broadcast_buffers(net, self.trainer.world_size)
        if self.family.ema is not None:
            self._update_ema()
        self.g_step += 1
        self.last = stats
        self._track_finite(stats)
        if self.g_step % self.trainer.log_every_n_steps == 0 and self.check_finite():
            self._log_diagnostics(stats, opts)

    def _train_only(self, optimizer: str | None) -> None:
        """Let only ``optimizer``'s nets take gradients (all of them for None)."""
        for name in self.family.optimized_nets():
            for param in self._params(name):
                param.requires_grad_(optimizer is None or name == optimizer)

    def _update(self, phase: Phase, item: Any, opt: Any, ctx: StepContext) -> dict[str, Tensor]:
        """One update of ``phase``: loss, backward, gradients averaged over ranks, step."""
        self._train_only(phase.optimizer)
        loss, stats = self.family.phase_loss(phase, item, ctx)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        params = self._params(phase.optimizer)
        average_gradients(params, self.trainer.world_size)
        stats[diag.grad_norm(phase.optimizer)] = self._grad_norm(params)
        opt.step()
        self.family.after_update(phase, ctx)
        return stats

    def _grad_scaler(self) -> Any:
        """The loss scaler of ``16-mixed`` precision, or None."""
        return getattr(self.trainer.precision_plugin, "scaler", None)

    def _grad_norm(self, params: list[nn.Parameter]) -> Tensor:
        """Gradient norm in the loss's units (16-mixed gradients are scaled)."""
        scaler = self._grad_scaler()
        norm = grad_norm(params)
        return norm / scaler.get_scale() if scaler is not None else norm

    # ------------------------------------------------------------------ divergence
    def _track_finite(self, stats: dict[str, Tensor]) -> None:
        """Remember, on the device (no host sync), the first step with a non-finite loss or
        gradient norm. Under 16-mixed an overflowing gradient is the scaler's business: it
        skips that update, so only the losses count."""
        keys = [k for k in stats if k.endswith(diag.LOSS_SUFFIX)]
        if self._grad_scaler() is None:
            keys += [k for k in stats if k.startswith(diag.GRAD_NORM)]
        bad = ~torch.isfinite(torch.stack([stats[k].double() for k in keys])).all()
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=bad.device)
        self._first_bad.masked_fill_(bad & (self._first_bad < 0), self.g_step)

    def check_finite(self) -> bool:
        """False, and the run stopped as ``diverged``, once a loss or gradient was NaN/Inf
        (NaN spreads to the parameters at the next update). Reads the device flag: a host
        sync, made at the logging interval and before checkpoints and evaluations."""
        if self.status == "diverged":
            return False
        if self._first_bad is None or int(self._first_bad) < 0:
            return True
        self.status, self.diverged_at = "diverged", int(self._first_bad)
        self.trainer.should_stop = True
        values = ", ".join(f"{k}={float(v):.3g}" for k, v in self.last.items() if "/" not in k)
        log.error(
            "diverged at step %d (found at step %d: %s): stopping this run; "
            "the last good checkpoint is kept",
            self.diverged_at,
            self.g_step,
            values,
        )
        return False

    def _log_diagnostics(self, stats: dict[str, Tensor], opts: dict[str, Any]) -> None:
        keys = list(stats)
        values = torch.stack([stats[k].double() for k in keys]).tolist()  # one host sync
        metrics = {diag.logged(k): v for k, v in zip(keys, values, strict=True)}
        for name, opt in opts.items():
            metrics[diag.learning_rate(name)] = opt.param_groups[0]["lr"]
        log_now(self.trainer, metrics, self.g_step)
        losses = [diag.phase_loss(p.name) for p in self.family.phases()]
        self.trainer.progress_bar_metrics.update(
            {k: round(metrics[diag.logged(k)], 4) for k in losses if diag.logged(k) in metrics}
        )

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganlab"] = {
            "g_step": self.g_step,
            "torch_rng": torch.get_rng_state(),  # for user code outside the step; ganlab's
            # streams (data, z, penalty weights, dropout) are reseeded from (seed, rank, step)
            "run_ids": {type(lg).__name__: str(lg.version) for lg in self.loggers},
            **self.build_info,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["ganlab"]
        self.g_step = state["g_step"]
        torch.set_rng_state(state["torch_rng"].cpu())
        # The last step's checkpoint says its batch was the epoch's last, and Lightning would
        # count the epoch (the whole run) as done: a run resumed with more steps ("train
        # longer") would train nothing. Whether batches are left is the loader's to say: it
        # is position-based and knows the run's length.
        batches = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.batch_progress")
        if batches is not None:
            batches["is_last_batch"] = False
