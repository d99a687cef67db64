"""GAN families: what a kind of GAN owns (its networks) and does (its phases).

A family declares its training as data, as StyleGAN2-ADA's ``training_loop.py`` lists its
phases: each ``Phase`` names the optimizer it steps, how many updates it makes per
training step and on which steps it is due. The runner (``ganlab.module.GANModule``)
loops over the phases without knowing the family; the family computes each phase's loss,
does any work after an update (weight clipping, an image pool), names the networks that
an EMA averages for sampling, and draws the pictures that callbacks save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.data.choices import data_choices
from ganlab.data.spec import KIND_WORDS, DataSpec
from ganlab.errors import UserError
from ganlab.latent import Latent
from ganlab.losses import AdversarialLoss


@dataclass(frozen=True)
class Phase:
    """One kind of update of a training step.

    Args:
        name: the phase's name (``d``, ``g``): diagnostics are logged under ``train/``.
        optimizer: the optimizer it steps; the runner trains only that optimizer's nets.
        repeats: updates per training step, each on the next real batch (n_critic).
        interval: due on the steps ``step % interval == 0`` (lazy regularization).
    """

    name: str
    optimizer: str
    repeats: int = 1
    interval: int = 1

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.interval < 1:
            raise ValueError(
                f"phase {self.name}: repeats and interval must be >= 1, "
                f"got {self.repeats}, {self.interval}"
            )


@dataclass
class StepContext:
    """What a phase's loss may use besides its batch.

    Args:
        step: G steps done before this training step.
        repeat: index of this update within its phase (0 .. repeats - 1).
        generator: the step's random stream (z, labels, penalty weights), reseeded from
            (seed, rank, step), so a resumed run draws what an uninterrupted one would.
        shared: values passed between the phases of one step (e.g. fakes for an image pool).
        optimizers: the run's optimizers by name (``torch.optim.Optimizer``), for a phase that
            needs another phase's update rule and state (the unrolled GAN unrolls D's); a
            phase must not step them.
    """

    step: int
    generator: torch.Generator
    repeat: int = 0
    shared: dict[str, Any] = field(default_factory=dict)
    optimizers: dict[str, Any] = field(default_factory=dict)


class Family(nn.Module):
    """A kind of GAN: its networks (submodules), phases, losses and samples.

    Subclasses set ``name`` and ``ema_names``, and implement ``needs``, ``phases``,
    ``optimized_nets``, ``phase_loss`` and ``batch_item``; the rest has defaults.
    """

    #: how the family is called in messages ("pix2pix needs paired data ...")
    name: str = "family"
    #: attributes holding the nets averaged (EMA) for sampling, e.g. ("generator",)
    ema_names: tuple[str, ...] = ()
    #: the adversarial loss of its phases (``ganlab.losses``); the health flags read whether
    #: G's loss saturates
    loss: AdversarialLoss
    #: the latent space G samples from (``ganlab.latent.Latent``); None: no noise input
    latent: Latent | None = None
    #: translation families: direction -> the part of the data it translates
    #: (``{"ab": "input"}`` for Pix2Pix; ``{"ab": "a", "ba": "b"}`` for CycleGAN)
    sources: dict[str, str] = {}

    def __init__(self) -> None:
        super().__init__()
        self.ema: nn.ModuleDict | None = None
        self.regularizers: list[Any] = []  # D-phase regularizers (``ganlab.losses``)

    # ------------------------------------------------------------------ declarations
    @property
    def needs(self) -> tuple[str, bool]:
        """The data kind it trains on (``ganlab.data.spec.KINDS``) and whether it needs
        labels to train."""
        raise NotImplementedError

    def phases(self) -> tuple[Phase, ...]:
        raise NotImplementedError

    def optimized_nets(self) -> dict[str, tuple[nn.Module, ...]]:
        """Optimizer name -> the nets it updates, in the order the optimizers are built."""
        raise NotImplementedError

    @property
    def double_backward(self) -> bool:
        """True when a phase differentiates a gradient (a gradient penalty, R1)."""
        return any(r.needs_input_gradient for r in self.regularizers)

    @property
    def batches_per_step(self) -> int:
        """Real batches each training step consumes: the most repeats of a phase."""
        return max(p.repeats for p in self.phases())

    def check_data(self, spec: DataSpec, family: str | None, data: str | None) -> None:
        """``UserError`` (one line) when the data is not what the family needs."""
        kind, labelled = self.needs
        if spec.kind != kind:
            raise UserError(
                f"{family or self.name} needs {KIND_WORDS[kind]}, but data={data} gives "
                f"{spec.words}: choose data={'|'.join(data_choices(kind)) or '...'}"
            )
        if labelled and not spec.labelled:
            raise UserError(
                f"{family or self.name} needs labelled data, but data={data} has no labels: "
                f"choose data={'|'.join(data_choices(kind, labelled=True)) or '...'}"
            )

    def check_batch(self, batch_size: int) -> None:
        """``UserError`` (one line) when the family cannot train on batches of this size
        (a packed D needs a multiple of its pack)."""

    def check_optimizers(self, factories: Mapping[str, Callable[..., Any]]) -> None:
        """``UserError`` (one line) when the run's optimizers (name -> factory of a torch
        optimizer over a list of parameters) cannot serve this family; called before
        training (the unrolled GAN needs a D optimizer whose rule it can unroll)."""

    # ------------------------------------------------------------------ training
    def batch_item(self, batch: Any, index: int) -> Any:
        """The ``index``-th real batch of a training step's item (one per repeat)."""
        raise NotImplementedError

    def phase_loss(self, phase: Phase, item: Any, ctx: StepContext) -> tuple[Tensor, dict]:
        """The loss to backpropagate for one update of ``phase`` on the real batch ``item``,
        and its diagnostics (detached scalar tensors, logged as ``train/<key>``)."""
        raise NotImplementedError

    def after_update(self, phase: Phase, ctx: StepContext) -> None:
        """Work after an optimizer step of ``phase`` (weight clipping, ...)."""

    # ------------------------------------------------------------------ EMA, sampling
    def enable_ema(self) -> None:
        """Keep an exponential moving average of each net in ``ema_names`` (made by the
        runner when ``ema`` > 0); sampling then uses the averages."""
        self.ema = nn.ModuleDict(
            {n: copy.deepcopy(getattr(self, n)).requires_grad_(False) for n in self.ema_names}
        )

    def ema_pairs(self) -> Iterator[tuple[nn.Module, nn.Module]]:
        """(net, its average) for every averaged net."""
        if self.ema is not None:
            for name, average in self.ema.items():
                yield getattr(self, name), average

    def sampling_net(self, name: str) -> nn.Module:
        """The net ``name`` as used for samples: its EMA average when there is one."""
        if self.ema is not None and name in self.ema:
            return self.ema[name]
        return getattr(self, name)

    def pictures(
        self, data: Any = None, n: int = 64, columns: int = 8, walks: int = 4, walk_steps: int = 10
    ) -> dict[str, tuple[Tensor, int]]:
        """Image grids for the sample callback: name -> (images (N, C, H, W) in [-1, 1],
        images per row), from fixed inputs (the fixed z, the data's validation items) so
        that runs compare picture by picture. ``n`` images of ``columns`` per row; latent
        families add ``walks`` interpolations of ``walk_steps`` images."""
        return {}
