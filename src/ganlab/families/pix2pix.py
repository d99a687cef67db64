"""Pix2Pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN.

G maps an input image to an output image (a U-Net; dropout is its noise, sec. 2.1); D
judges (input, image) pairs patch by patch (a PatchGAN). G's objective is the adversarial
loss plus λ·L1 to the target (eq. 4, λ = 100); D's is divided by 2 (sec. 3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganlab import diagnostics as diag
from ganlab.data.spec import DataSpec
from ganlab.families.base import Family, Phase, StepContext, full
from ganlab.families.translation import Translation, apply, side_by_side
from ganlab.losses import AdversarialLoss, Regularizer

NetFactory = Callable[..., nn.Module]


class Pix2Pix(Family):
    """G: input (B, C_in, S, S) -> output (B, C_out, S, S); D: cat(input, image) -> scores.

    Args:
        generator, discriminator: factories of the nets (Hydra ``_partial_`` configs); G gets
            ``in_channels``, ``out_channels`` and ``image_size`` from the data, D
            ``in_channels`` = C_in + C_out and ``image_size``.
        loss: the adversarial loss (the paper's: the vanilla cGAN loss, ``nonsaturating``).
        regularizers: D-phase regularizers (applied to D on the pairs), usually none.
        l1_weight: λ of the L1 term (100; 0 = cGAN alone).
        adversarial_weight: weight of the adversarial term in G's loss (0 = L1 alone, the
            paper's ablation; D then still trains but G ignores it).
        d_scale: factor on D's loss (0.5: "we divide the objective by 2 while optimizing D").
    """

    name = "pix2pix"
    ema_names = ("generator",)
    sources = {"ab": "input"}
    # D judges (input, output) pairs: a shift or a cutout must move both halves alike, and
    # colour jitter of the input would change the task; the L1 term already ties G to targets
    augment_refused = (
        "its D judges (input, output) pairs, where a transform would have to move both "
        "halves alike (not built), and its L1 term already ties G to the targets"
    )

    def __init__(
        self,
        generator: NetFactory,
        discriminator: NetFactory,
        loss: AdversarialLoss,
        regularizers: Sequence[Regularizer] = (),
        l1_weight: float = 100.0,
        adversarial_weight: float = 1.0,
        d_scale: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for key, value in (("l1_weight", l1_weight), ("adversarial_weight", adversarial_weight)):
            if value < 0:
                raise ValueError(f"pix2pix: {key} must be >= 0, got {value}")
        self.make_generator, self.make_discriminator = generator, discriminator
        self.loss, self.regularizers = loss, nn.ModuleList(regularizers)
        self.l1_weight, self.adversarial_weight = float(l1_weight), float(adversarial_weight)
        self.d_scale, self.seed = float(d_scale), seed
        self._phases = (self.d_phase(self._d_loss), Phase("g", "g", loss=self._g_loss))

    @property
    def needs(self) -> tuple[str, bool]:
        return "pairs", False

    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    def optimized_nets(self) -> dict[str, tuple[nn.Module, ...]]:
        return {"g": (self.generator,), "d": (self.discriminator,)}

    def setup(self, spec: DataSpec, choices: Mapping[str, str] | None = None) -> None:
        """Check that the data is paired, then build G and D for its channels and size."""
        self.check_data(spec, choices or {})
        c_in, size, _ = spec.shapes["input"]
        c_out = spec.shapes["target"][0]
        self.generator = self.make_generator(in_channels=c_in, out_channels=c_out, image_size=size)
        self.discriminator = self.make_discriminator(in_channels=c_in + c_out, image_size=size)

    # ------------------------------------------------------------------ training
    def batch_item(self, batch: dict[str, Tensor], index: int) -> tuple[Tensor, Tensor]:
        """(input, target) of the ``index``-th real batch; labels stay out of training."""
        return batch["input"][index], batch["target"][index]

    def _d(self, source: Tensor, image: Tensor) -> Tensor:
        return full(self.discriminator(torch.cat([source, image], dim=1)))  # (B, 1, P, P)

    def _d_loss(self, item: tuple[Tensor, Tensor], ctx: StepContext) -> tuple[Tensor, dict]:
        """D's update on (input, target) and (input, G(input)) pairs, its adversarial loss
        scaled by ``d_scale``; the regularizers act on D of the input's pairs."""
        source, target = item
        with torch.no_grad():
            fake = self.generator(source)
        d = lambda x: self.discriminator(torch.cat([source, x], dim=1))  # noqa: E731
        step = self.d_step(d, target, fake, ctx, scale=self.d_scale)
        return step.loss, step.stats()

    def _g_loss(self, item: tuple[Tensor, Tensor], ctx: StepContext) -> tuple[Tensor, dict]:
        """G's update: the adversarial loss of its pairs plus λ·L1 to the target (eq. 4)."""
        source, target = item
        fake = self.generator(source)
        adversarial = self.loss.g_loss(self._d(source, fake))
        l1 = (fake.float() - target.float()).abs().mean()
        loss = self.adversarial_weight * adversarial + self.l1_weight * l1
        return loss, {
            diag.G_LOSS: loss.detach(),
            diag.G_ADV: adversarial.detach(),
            diag.L1: l1.detach(),
        }

    # ------------------------------------------------------------------ sampling
    def translate(self, source: Tensor, direction: str = "ab") -> Tensor:
        """G(source) in eval mode (its EMA average when there is one), without gradients."""
        return apply(self.sampling_net("generator"), source)

    def translations(self, data: Any, n: int) -> list[Translation]:
        """The validation pairs' translations, for the metrics."""
        items = data.val_items(n)
        return [
            Translation(
                name="",
                source=items["input"],
                output=self.translate(items["input"]).cpu(),
                target=items["target"],
                labels=items.get("label"),
                domain=data.domain_data("target"),
            )
        ]

    def pictures(
        self, data: Any = None, n: int = 64, columns: int = 8, walks: int = 4, walk_steps: int = 10
    ) -> dict[str, tuple[Tensor, int]]:
        """``grid``: input | output | target of the first n / columns validation pairs."""
        items = data.val_items(max(1, n // columns))
        output = self.translate(items["input"]).cpu()
        return {"grid": side_by_side([items["input"], output, items["target"]])}
