"""The latent GAN (Goodfellow et al. 2014): noise in, samples out; optionally class-conditional.

Phases: ``n_critic`` D updates, each on a fresh real batch and fresh z, then one G update
through D (Goodfellow et al. 2014, Alg. 1). Any adversarial loss, any D regularizer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganlab import diagnostics as diag
from ganlab.data.choices import data_choices
from ganlab.data.spec import KIND_WORDS, DataSpec
from ganlab.errors import UserError
from ganlab.families.base import Family, Phase, StepContext, full
from ganlab.latent import Latent, Truncation
from ganlab.losses import AdversarialLoss, Regularizer
from ganlab.nets import has_batchnorm
from ganlab.nets.packing import pack, packed

NetFactory = Callable[..., nn.Module]


def call_net(net: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """``net(x)``, or ``net(x, y)`` for a class-conditional network."""
    return net(x) if y is None else net(x, y)


def conditioned(
    net: nn.Module | Callable[..., Tensor], y: Tensor | None
) -> Callable[[Tensor], Tensor]:
    """``net`` on a batch, conditioned on the labels ``y`` (None: unconditional)."""
    return lambda x: call_net(net, x, y)


def class_rows(num_classes: int, rows: int) -> list[int]:
    """The classes shown, one per row: all of them up to ``rows``, else evenly spaced."""
    if num_classes <= rows:
        return list(range(num_classes))
    return [round(i * (num_classes - 1) / (rows - 1)) for i in range(rows)]


class LatentGAN(Family):
    """G maps z (and a class) to a sample; D scores samples (and their class).

    Args:
        generator, discriminator: factories of the nets (Hydra ``_partial_`` configs);
            image nets get ``image_size``, ``channels`` (and ``num_classes``) from the data.
        loss: adversarial loss with ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)``.
        latent_dim, latent_dist: z's size and distribution (``normal`` | ``uniform``).
        data_kind: what the nets make and read: ``points`` or ``images``.
        n_critic: D updates per G update (k in Goodfellow et al. 2014, Alg. 1).
        regularizers: D-phase regularizers (gradient penalty, R1, weight clipping).
        conditional: class-conditional G and D; D's fakes share the real batch's labels (so a
            gradient penalty interpolates within a class); G's labels are drawn uniformly.
        seed: the run's seed, which fixes the evaluation z (``ganlab.latent``).
        pack: PacGAN (Lin et al. 2018): D judges packs of ``pack`` samples concatenated on
            features (points) or channels (images), built with its input scaled by m and
            wrapped in ``ganlab.nets.packing.Packed``; 1 = no packing. The batch must divide
            by m; a class-conditional D cannot be packed. Gradient penalties act on the
            packs D sees (interpolates, and gradient norms, per pack).
    """

    name = "the latent GAN"
    ema_names = ("generator",)
    augment_refused = None  # D's step and G's both call D on ``d_view``

    def __init__(
        self,
        generator: NetFactory,
        discriminator: NetFactory,
        loss: AdversarialLoss,
        latent_dim: int,
        latent_dist: str = "normal",
        data_kind: str = "points",
        n_critic: int = 1,
        regularizers: Sequence[Regularizer] = (),
        conditional: bool = False,
        seed: int = 0,
        pack: int = 1,
    ) -> None:
        super().__init__()
        if data_kind not in ("points", "images"):  # the nets of a translation family
            raise UserError(
                f"the latent GAN generates points or images, but the model's nets are for "
                f"{KIND_WORDS.get(data_kind, data_kind)}: choose family=pix2pix (paired "
                "images) or family=cyclegan (two domains), or another model"
            )
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1 (D updates per G update), got {n_critic}")
        if pack < 1:
            raise ValueError(f"model.pack must be >= 1 samples per D input, got {pack}")
        self.latent = Latent(latent_dim, latent_dist)
        self.make_generator, self.make_discriminator = generator, discriminator
        self.loss, self.regularizers = loss, nn.ModuleList(regularizers)
        self.data_kind, self.n_critic = data_kind, n_critic
        self.conditional, self.seed, self.pack = conditional, seed, pack
        self.num_classes = 0
        self._phases = (
            self.d_phase(self._d_loss, repeats=n_critic),
            Phase("g", "g", loss=self._g_loss),
        )

    # ------------------------------------------------------------------ declarations
    @property
    def needs(self) -> tuple[str, bool]:
        return self.data_kind, self.conditional

    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    def optimized_nets(self) -> dict[str, tuple[nn.Module, ...]]:
        return {"g": (self.generator,), "d": (self.discriminator,)}

    def setup(self, spec: DataSpec, choices: Mapping[str, str] | None = None) -> None:
        """Check the data, then build G and D for it (image size, channels, classes)."""
        choices = choices or {}
        self.check_data(spec, choices)
        kwargs: dict[str, Any] = {}
        if self.data_kind == "images":
            channels, size, _ = spec.shapes["x"]
            kwargs = {"image_size": size, "channels": channels}
        if self.conditional:
            self.num_classes = kwargs["num_classes"] = spec.num_classes
        self.generator = self.make_generator(**kwargs)
        if self.pack > 1 and self.conditional:
            raise UserError(
                f"model.pack={self.pack} packs D's input, and a class-conditional D cannot be "
                "packed (the samples of a pack have their own classes): set model.pack=1 or "
                "model.conditional=false"
            )
        self.discriminator = packed(self.make_discriminator, self.pack, spec.shapes["x"], kwargs)
        self.net_kwargs = kwargs
        self._check_regularizers(choices)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.pack:
            fix = max(self.pack, round(batch_size / self.pack) * self.pack)
            raise UserError(
                f"model.pack={self.pack} packs D's input in groups of {self.pack} samples, so "
                f"data.batch_size must divide by {self.pack}, got {batch_size}: "
                f"set data.batch_size={fix}"
            )

    def check_data(self, spec: DataSpec, choices: Mapping[str, str]) -> None:
        model, data = choices.get("model"), choices.get("data")
        if spec.kind != self.data_kind:
            fix = "|".join(data_choices(self.data_kind))
            raise UserError(
                f"model={model} generates {KIND_WORDS[self.data_kind]} but data={data} "
                f"holds {spec.words}: choose data={fix} (or another model)"
            )
        if self.conditional and not spec.labelled:
            raise UserError(
                f"model.conditional=true needs labelled data, but data={data} has no labels: "
                f"choose data={'|'.join(data_choices(self.data_kind, labelled=True))} "
                "or model.conditional=false"
            )

    def _check_regularizers(self, choices: Mapping[str, str]) -> None:
        penalties = [type(r).__name__ for r in self.regularizers if r.needs_input_gradient]
        if penalties and has_batchnorm(self.discriminator):
            # the penalty is per sample; BatchNorm couples the samples of a batch
            # (Gulrajani et al. 2017, sec. 4)
            raise UserError(
                f"loss={choices.get('loss')} with {', '.join(penalties)} needs a critic without "
                f"BatchNorm, but model={choices.get('model')} has BatchNorm in D: "
                "set model.discriminator.norm=layer (or none)"
            )

    # ------------------------------------------------------------------ training
    def batch_item(self, batch: Tensor | Sequence[Tensor], index: int) -> tuple[Tensor, Any]:
        """(samples, labels or None) of the ``index``-th real batch: labelled sets yield
        (x (R, B, ...), y (R, B)), unlabelled ones x."""
        if isinstance(batch, Tensor):
            return batch[index], None
        x, y = batch
        return x[index], (y[index] if self.conditional else None)

    def _d_loss(self, item: tuple[Tensor, Any], ctx: StepContext) -> tuple[Tensor, dict]:
        """D's update on a real batch and as many fakes (with the real batch's labels)."""
        real, y = item
        with torch.no_grad():
            fake = call_net(self.generator, self.sample_z(real.shape[0], ctx.generator), y)
        d = conditioned(self.discriminator, y)
        step = self.d_step(d, real, fake, ctx, penalized=self.penalized(self.discriminator, y))
        return step.loss, step.stats()

    def penalized(
        self, net: Callable[..., Tensor], y: Tensor | None
    ) -> Callable[[Tensor, Tensor], tuple[Callable, Tensor, Tensor]]:
        """What the regularizers act on (``Family.d_step``'s ``penalized``): D ``net`` (D, or
        the unrolled GAN's functional call of D) with the real labels, on the samples; a
        packed D on the packs it sees, (B/m, m·...)."""

        def view(real: Tensor, fake: Tensor) -> tuple[Callable, Tensor, Tensor]:
            if self.pack > 1:
                packs = pack(real, self.pack), pack(fake, self.pack)
                return functools.partial(net, packed=True), *packs
            return (net if y is None else functools.partial(net, y=y)), real, fake

        return view

    def _regularize(
        self,
        real: Tensor,
        fake: Tensor,
        d_update: int,
        y: Tensor | None,
        generator: torch.Generator,
        net: Callable[..., Tensor] | None = None,
    ) -> Tensor | None:
        """The penalties due on D update ``d_update`` (``Family.penalties``) for D (or ``net``)."""
        view = self.penalized(self.discriminator if net is None else net, y)
        return self.penalties(*view(real, fake), d_update, generator)

    def _g_loss(self, item: tuple[Tensor, Any], ctx: StepContext) -> tuple[Tensor, dict]:
        """G's update through D, on fresh z and uniformly drawn labels; D sees the fakes as
        in its own step (``d_view``: augmented, DiffAugment's D(T(G(z))))."""
        n = item[0].shape[0]
        y = self.draw_labels(n, ctx.generator)
        fake = self.g(self.sample_z(n, ctx.generator), y)
        fake_out = call_net(self.discriminator, self.d_view(fake, ctx), y)
        loss = self.loss.g_loss(full(fake_out))
        return loss, {diag.G_LOSS: loss.detach()}

    def g(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z, y) of the trained (not averaged) generator."""
        return call_net(self.generator, z, y)

    @torch.no_grad()
    def critic(self, x: Tensor) -> Tensor:
        """D's raw output on ``x``, in eval mode (no BatchNorm statistics are updated)."""
        d = self.discriminator
        was_training = d.training
        d.eval()
        x = x.to(self._device())
        # a packed D scores a pack of m copies of each point
        out = d(x.repeat_interleave(self.pack, dim=0) if self.pack > 1 else x)
        d.train(was_training)
        return out

    # ------------------------------------------------------------------ sampling
    def sample_z(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` training z (n, latent_dim) from the step's random stream."""
        return self.latent.draw(n, generator)

    def draw_labels(self, n: int, generator: torch.Generator) -> Tensor | None:
        """``n`` class labels drawn uniformly (None for an unconditional model)."""
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), generator=generator, device=generator.device)

    def fixed_z(
        self,
        n: int,
        device: torch.device | str | None = None,
        truncation: Truncation | None = None,
    ) -> Tensor:
        """The evaluation z: the same ``n`` vectors at every call and on every rank
        (truncated when asked: ``ganlab.latent.Truncation``)."""
        return self.latent.fixed(n, self.seed, device or self._device(), truncation)

    def fixed_labels(self, n: int, device: torch.device | str | None = None) -> Tensor | None:
        """The evaluation labels: 0, 1, ..., C-1, 0, 1, ... (classes equally represented)."""
        if not self.num_classes:
            return None
        return torch.arange(n, device=device or self._device()) % self.num_classes

    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

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
        the run's fixed evaluation ones, so evaluations compare like with like."""
        net = self.sampling_net("generator")
        was_training = net.training
        net.eval()
        z = self.fixed_z(n) if z is None else z
        y = self.fixed_labels(len(z)) if y is None else y
        zs = z.split(batch_size)
        ys = [None] * len(zs) if y is None else y.split(batch_size)
        out = torch.cat([call_net(net, zc, yc) for zc, yc in zip(zs, ys, strict=True)])
        net.train(was_training)
        return out

    def grid(
        self, n: int = 64, columns: int = 8, truncation: Truncation | None = None
    ) -> tuple[Tensor, int]:
        """A grid of samples from the fixed z (N, C, H, W) (truncated when asked) and its
        images per row. A conditional model gets one row per class (every class up to
        max(10, n / columns), else evenly spaced ones), and column j keeps the same z in
        every row."""
        if not self.num_classes:
            return self.generate(n, z=self.fixed_z(n, truncation=truncation)), columns
        classes = class_rows(self.num_classes, rows=max(10, n // columns))
        z = self.fixed_z(columns, truncation=truncation).repeat(len(classes), 1)  # column j
        y = torch.tensor(classes, device=z.device).repeat_interleave(columns)
        return self.generate(len(z), z=z, y=y), columns

    def interpolation(
        self, rows: int = 4, steps: int = 10, truncation: Truncation | None = None
    ) -> Tensor:
        """(rows x steps, C, H, W): walks (slerp; lerp for uniform z) between the fixed z
        pairs (2i, 2i + 1) (truncated when asked); a conditional model keeps class i on
        row i."""
        z = self.fixed_z(2 * rows, truncation=truncation)
        t = torch.linspace(0, 1, steps, device=z.device)
        walk = self.latent.interpolate(z[0::2], z[1::2], t).flatten(0, 1)  # (rows * steps, D)
        y = None
        if self.num_classes:
            y = (torch.arange(rows, device=z.device) % self.num_classes).repeat_interleave(steps)
        return self.generate(len(walk), z=walk, y=y)

    def pictures(
        self, data: Any = None, n: int = 64, columns: int = 8, walks: int = 4, walk_steps: int = 10
    ) -> dict[str, tuple[Tensor, int]]:
        """Image models: the sample grid and, when ``walks``, the interpolation strip."""
        if self.data_kind != "images":
            return {}  # points are plotted by the evaluator
        out = {"grid": self.grid(n, columns)}
        if walks:
            out["interpolation"] = (self.interpolation(walks, walk_steps), walk_steps)
        return out
