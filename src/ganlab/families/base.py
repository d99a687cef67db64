"""GAN families: what a kind of GAN owns (its networks) and does (its phases).

A family declares its training as data, as StyleGAN2-ADA's ``training_loop.py`` lists its
phases: each ``Phase`` names the optimizer it steps, how many updates it makes per
training step, on which steps it is due, and carries its own loss (and any work after its
update: weight clipping). The runner (``ganlab.module.GANModule``) loops over the phases
without knowing the family. Every family's D phases share one D step (``Family.d_step``:
the adversarial loss, the lazy regularizers, the diagnostics); the family names the networks
that an EMA averages for sampling, and draws the pictures that callbacks save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.augment import Augment
from ganlab.data.choices import data_choices
from ganlab.data.spec import KIND_WORDS, DataSpec
from ganlab.errors import UserError
from ganlab.families.dstep import DStep
from ganlab.latent import Latent
from ganlab.losses import AdversarialLoss

#: a phase's loss: (the real batch of this update, the step's context) -> (the loss to
#: backpropagate, its diagnostics: detached scalar tensors logged as ``train/<key>``)
PhaseLoss = Callable[[Any, "StepContext"], tuple[Tensor, dict]]
#: work after a phase's optimizer step: (the phase, the step's context) -> None
AfterUpdate = Callable[["Phase", "StepContext"], None]


def full(out: Tensor) -> Tensor:
    """D's raw output in at least float32 for the loss (it is bf16/fp16 under autocast)."""
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


@dataclass(frozen=True)
class Phase:
    """One kind of update of a training step.

    Args:
        name: the phase's name (``d``, ``g``): diagnostics are logged under ``train/``.
        optimizer: the optimizer it steps; the runner trains only that optimizer's nets.
        repeats: updates per training step, each on the next real batch (n_critic).
        interval: due on the steps ``step % interval == 0`` (lazy regularization).
        loss: the phase's loss (``PhaseLoss``): the family's own, chosen when the phase is
            declared (never by the phase's name).
        after: work after each of its optimizer steps (``AfterUpdate``), or None.
    """

    name: str
    optimizer: str
    repeats: int = 1
    interval: int = 1
    loss: PhaseLoss | None = field(default=None, compare=False, repr=False)
    after: AfterUpdate | None = field(default=None, compare=False, repr=False)

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
        phase: the phase being updated (set by the runner).
    """

    step: int
    generator: torch.Generator
    repeat: int = 0
    shared: dict[str, Any] = field(default_factory=dict)
    optimizers: dict[str, Any] = field(default_factory=dict)
    phase: Phase | None = None

    @property
    def update(self) -> int:
        """This update's index among all updates of its phase: step x repeats + repeat (the
        D update a lazy regularizer counts)."""
        return self.step * (self.phase.repeats if self.phase is not None else 1) + self.repeat


class Family(nn.Module):
    """A kind of GAN: its networks (submodules), phases, losses and samples.

    Subclasses set ``name`` and ``ema_names``, and implement ``needs``, ``phases`` (each
    phase with its loss; a D phase from ``d_phase``, its loss from ``d_step``), ``setup``,
    ``optimized_nets`` and ``batch_item``; the rest has defaults. What callbacks and commands
    use beyond this contract is in small protocols (``ganlab.families.protocols``:
    ``CanSample``, ``CanTranslate``, ``CanCritic``).
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
    #: why D's inputs cannot be augmented (``augment=...``, ``use_augment``), or None when
    #: every call of D in the family's phases goes through ``d_view`` (D's step and G's)
    augment_refused: str | None = "its phases do not declare that G sees D through d_view"

    def __init__(self) -> None:
        super().__init__()
        self.ema: nn.ModuleDict | None = None
        # what D sees of its inputs (``ganlab.augment``); None: the inputs themselves
        self.augment: Augment | None = None
        # D-phase regularizers (``ganlab.losses``): modules, so their state is checkpointed
        self.regularizers = nn.ModuleList()

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

    def setup(self, spec: DataSpec, choices: Mapping[str, str] | None = None) -> None:
        """Check the data (``check_data``), then build the nets for it (image size, channels,
        classes: ``spec``). Called once before training, and when a checkpoint's family is
        rebuilt. ``choices`` (Hydra's: group -> option) name things in messages."""
        raise NotImplementedError

    def use_data(self, data: Any) -> None:
        """Take what the family needs from the data module itself (not only its spec), once
        after ``setup`` and before training: CycleGAN's semantic classifiers. Not called
        when a checkpoint's family is rebuilt, whose state holds it. Nothing by default."""

    @property
    def double_backward(self) -> bool:
        """True when a phase differentiates a gradient (a gradient penalty, R1)."""
        return any(r.needs_input_gradient for r in self.regularizers)

    @property
    def batches_per_step(self) -> int:
        """Real batches each training step consumes: the most repeats of a phase. The data
        is built to yield that many per step (``ganlab.train.build``)."""
        return max(p.repeats for p in self.phases())

    def check_data(self, spec: DataSpec, choices: Mapping[str, str]) -> None:
        """``UserError`` (one line) when the data ``spec`` is not what the family needs;
        ``choices`` (Hydra's) name the family and data in the message."""
        family, data = choices.get("family"), choices.get("data")
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
        and its diagnostics (detached scalar tensors, logged as ``train/<key>``): the
        phase's own loss."""
        if phase.loss is None:
            raise ValueError(f"{self.name}: phase {phase.name} declares no loss")
        return phase.loss(item, ctx)

    def after_update(self, phase: Phase, ctx: StepContext) -> None:
        """Work after an optimizer step of ``phase``: the phase's own (weight clipping, ...)."""
        if phase.after is not None:
            phase.after(phase, ctx)

    # ------------------------------------------------------------------ the D step
    def d_phase(self, loss: PhaseLoss, repeats: int = 1, name: str = "d") -> Phase:
        """A D phase (optimizer ``name``) with ``loss``, followed by the regularizers' work
        after each update (``after_d_update``)."""
        return Phase(name, name, repeats=repeats, loss=loss, after=self.after_d_update)

    def use_augment(self, augment: Augment, choices: Mapping[str, str] | None = None) -> None:
        """Show D every batch through ``augment`` (``d_view``); ``UserError`` (one line) when
        the family cannot (``augment_refused``) or trains on data it does not transform.
        ``choices`` (Hydra's) name things in the message."""
        choices = choices or {}
        what = f"augment={choices.get('augment', type(augment).__name__.lower())}"
        family = f"family={choices['family']}" if "family" in choices else self.name
        if self.augment_refused:
            raise UserError(
                f"{what} augments what D sees, and {family} cannot have it: "
                f"{self.augment_refused}; set augment=none"
            )
        kind = self.needs[0]
        if kind != augment.needs:
            raise UserError(
                f"{what} transforms {KIND_WORDS[augment.needs]}, but {family} with "
                f"model={choices.get('model', '...')} trains on {KIND_WORDS[kind]}: "
                "set augment=none (or choose an image model)"
            )
        self.augment = augment

    def d_view(self, x: Tensor, ctx: StepContext) -> Tensor:
        """What D sees of a batch of samples (real or fake), in D's step and in G's: ``x``
        through the augmentation (DiffAugment, ADA: ``ganlab.augment``), drawing from the
        step's generator; ``x`` itself without one. G's loss must call D on this view too,
        so that D compares augmented reals with augmented fakes (no leak)."""
        return x if self.augment is None else self.augment(x, ctx.generator)

    def d_step(
        self,
        d: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        ctx: StepContext,
        *,
        update: int | None = None,
        scale: float = 1.0,
        d_fake: Callable[[Tensor], Tensor] | None = None,
        penalized: Callable[[Tensor, Tensor], tuple[Callable, Tensor, Tensor]] | None = None,
        observe: bool = True,
        d_loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> DStep:
        """One D update's loss: ``scale`` x the adversarial loss of D's raw outputs on what it
        sees of ``real`` and ``fake`` (``d_view``), plus the penalties of the regularizers
        due on this update (``penalties``), and the diagnostics.

        Args:
            d: D on a batch (its conditioning bound); ``d_fake``: on the fakes, when it differs.
            update: the index of this D update (default: ``ctx.update``).
            scale: factor on the adversarial loss (Pix2Pix halves D's, not its penalties).
            penalized: (real, fake) as D sees them -> (D, real, fake) as the regularizers see
                them (PacGAN: the packs); default: ``d``, real, fake.
            observe: show the regularizers and the augmentation D's outputs
                (``Regularizer.observe``: LeCam's anchors; ``Augment.observe``: ADA's p);
                False for a hypothetical update (the unrolled GAN's look-ahead).
            d_loss: D's adversarial loss of its raw outputs (real, fake), for a family with a
                loss of its own (a relativistic GAN compares the two); default: the run's
                ``loss.d_loss``.
        """
        real, fake = self.d_view(real, ctx), self.d_view(fake, ctx)
        real_out, fake_out = full(d(real)), full((d if d_fake is None else d_fake)(fake))
        adversarial = (self.loss.d_loss if d_loss is None else d_loss)(real_out, fake_out)
        if scale != 1.0:
            adversarial = scale * adversarial
        if observe:
            for reg in self.regularizers:
                reg.observe(real_out.detach(), fake_out.detach())
            if self.augment is not None:
                self.augment.observe(real_out.detach())
        on = (d, real, fake) if penalized is None else penalized(real, fake)
        update = ctx.update if update is None else update
        penalty = self.penalties(*on, update, ctx.generator, outputs=(real_out, fake_out))
        loss = adversarial if penalty is None else adversarial + penalty
        real_out, fake_out = real_out.detach(), fake_out.detach()
        return DStep(
            loss=loss,
            adversarial=adversarial.detach(),
            penalty=None if penalty is None else penalty.detach(),
            real_out=real_out,
            fake_out=fake_out,
            accuracy=self.loss.accuracy(real_out, fake_out),
            extra={} if self.augment is None else self.augment.stats(),
        )

    def penalties(
        self,
        d: Callable,
        real: Tensor,
        fake: Tensor,
        update: int,
        generator: torch.Generator,
        outputs: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor | None:
        """The sum of the penalties of the regularizers due on D update ``update`` (those with
        ``update % interval == 0``), each multiplied by its interval, or None: lazy
        regularization (Karras et al. 2020, StyleGAN2, sec. 3.1). ``outputs``: D's raw
        outputs (real, fake) of the update, for the penalties on them (LeCam)."""
        total = None
        for reg in self.regularizers:
            if update % reg.interval:
                continue
            terms = [reg.penalty(d, real, fake, generator)]
            if outputs is not None:
                terms.append(reg.output_penalty(*outputs))
            for penalty in terms:
                if penalty is not None:
                    penalty = reg.interval * penalty
                    total = penalty if total is None else total + penalty
        return total

    def after_d_update(self, phase: Phase, ctx: StepContext) -> None:
        """After each D update: every regularizer's work (weight clipping) on each net of the
        phase's optimizer."""
        nets = self.optimized_nets()[phase.optimizer]
        for reg in self.regularizers:
            for net in nets:
                reg.after_d_step(net)

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
