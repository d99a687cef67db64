"""CycleGAN (Zhu et al. 2017): unpaired translation between two image domains.

Two generators (G_AB: A -> B, G_BA: B -> A) and two discriminators (D_A on domain A, D_B on
domain B). G's objective (eq. 3): the adversarial losses of both directions, plus
λ_cycle·(‖G_BA(G_AB(a)) − a‖₁ + ‖G_AB(G_BA(b)) − b‖₁), plus the identity loss
λ_identity·λ_cycle·(‖G_AB(b) − b‖₁ + ‖G_BA(a) − a‖₁) (sec. 5.2; only when both domains have
the same channels). D is updated on a history of 50 generated images (sec. 4, after
Shrivastava et al. 2017). As in the reference code, the G phase comes first and D is
updated with the fakes that phase made. Optionally, G's objective adds CyCADA's
semantic-consistency loss (``ganlab.families.semantic``): frozen classifiers must give each
translation the class of its input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ganlab import diagnostics as diag
from ganlab.data.spec import DataSpec
from ganlab.errors import UserError
from ganlab.families.base import Family, Phase, StepContext, full
from ganlab.families.semantic import SemanticConsistency
from ganlab.families.translation import Translation, apply, side_by_side
from ganlab.losses import AdversarialLoss, Regularizer

NetFactory = Callable[..., nn.Module]


class ImagePool(nn.Module):
    """The last ``size`` generated images; each query returns, image by image, the new one
    while the pool fills, then with probability 1/2 a stored image (replaced by the new
    one), else the new one. Its contents are buffers: they travel in checkpoints, so a
    resumed run continues exactly. Randomness comes from the step's stream."""

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"ImagePool: size must be >= 0, got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.filled = 0  # host copy of ``count`` (no device read per query)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.filled = int(self.count)

    @torch.no_grad()
    def query(self, fakes: Tensor, generator: torch.Generator) -> Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        out = fakes.clone()
        free = min(self.size - self.filled, len(fakes))
        if free:
            self.images[self.filled : self.filled + free] = fakes[:free]
            self.filled += free
            self.count.fill_(self.filled)
        rest = len(fakes) - free
        if rest:
            device = fakes.device
            swap = torch.rand(rest, generator=generator, device=device) < 0.5
            idx = torch.randint(self.size, (rest,), generator=generator, device=device)
            stored, new = self.images.index_select(0, idx), fakes[free:]
            keep = swap.view(-1, *(1,) * (fakes.dim() - 1))
            out[free:] = torch.where(keep, stored, new)
            self.images.index_copy_(0, idx, torch.where(keep, new, stored))
        return out


class CycleGAN(Family):
    """G_AB, G_BA, D_A, D_B on two unpaired domains.

    Args:
        generator, discriminator: factories of the nets (Hydra ``_partial_`` configs), each
            built twice: G with ``in_channels``, ``out_channels``, ``image_size``; D with
            ``in_channels`` (one image) and ``image_size``.
        loss: the adversarial loss (the paper's: least squares, ``lsgan``).
        regularizers: D-phase regularizers, usually none.
        cycle_weight: λ_cycle (10).
        identity_weight: the identity loss's weight relative to λ_cycle (0.5; 0 = off).
        adversarial_weight: weight of the adversarial terms in G's loss.
        pool_size: generated images kept per D (50; 0 = D sees only the latest).
        semantic_weight: weight of the semantic-consistency loss (CyCADA, eq. 4; 0 = off,
            the paper's CycleGAN). Needs two domains that each give a domain classifier.
    """

    name = "cyclegan"
    ema_names = ("g_ab", "g_ba")
    sources = {"ab": "a", "ba": "b"}
    # two Ds would share one augmentation state (ADA's p tracks one D), and G's adversarial
    # terms call D_A and D_B directly
    augment_refused = (
        "its two Ds would share one augmentation state (ADA's p follows one D), and its G "
        "phase does not call them through d_view"
    )

    def __init__(
        self,
        generator: NetFactory,
        discriminator: NetFactory,
        loss: AdversarialLoss,
        regularizers: Sequence[Regularizer] = (),
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        adversarial_weight: float = 1.0,
        pool_size: int = 50,
        semantic_weight: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.make_generator, self.make_discriminator = generator, discriminator
        self.loss, self.regularizers = loss, nn.ModuleList(regularizers)
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.adversarial_weight, self.pool_size, self.seed = adversarial_weight, pool_size, seed
        if semantic_weight < 0:
            raise ValueError(f"semantic_weight must be >= 0, got {semantic_weight}")
        self.semantic_weight = float(semantic_weight)
        self.semantic: SemanticConsistency | None = None
        self._phases = (Phase("g", "g", loss=self._g_loss), self.d_phase(self._d_loss))

    @property
    def needs(self) -> tuple[str, bool]:
        return "domains", False

    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    def optimized_nets(self) -> dict[str, tuple[nn.Module, ...]]:
        return {"g": (self.g_ab, self.g_ba), "d": (self.d_a, self.d_b)}

    def setup(self, spec: DataSpec, choices: Mapping[str, str] | None = None) -> None:
        """Check that the data has two domains, then build the four nets and the pools."""
        self.check_data(spec, choices or {})
        stateful = [type(r).__name__ for r in self.regularizers if any(True for _ in r.buffers())]
        if stateful:  # its state tracks one D's outputs (LeCam's anchors); here two Ds share it
            raise UserError(
                f"cyclegan trains two Ds, and {', '.join(stateful)} keeps state of one D's "
                "outputs: remove it from regularizers"
            )
        shape_a, shape_b = spec.shapes["a"], spec.shapes["b"]
        c_a, c_b, size = shape_a[0], shape_b[0], shape_a[-1]
        self.g_ab = self.make_generator(in_channels=c_a, out_channels=c_b, image_size=size)
        self.g_ba = self.make_generator(in_channels=c_b, out_channels=c_a, image_size=size)
        self.d_a = self.make_discriminator(in_channels=c_a, image_size=size)
        self.d_b = self.make_discriminator(in_channels=c_b, image_size=size)
        self.pool_a, self.pool_b = (
            ImagePool(self.pool_size, shape_a),
            ImagePool(self.pool_size, shape_b),
        )
        self.identity = self.identity_weight > 0 and c_a == c_b
        if self.semantic_weight > 0:
            option = f"family.semantic_weight={self.semantic_weight:g}"
            SemanticConsistency.check(spec, option, (choices or {}).get("data"))
            self.semantic = SemanticConsistency(size, spec.num_classes)

    def use_data(self, data: Any) -> None:
        """The semantic classifiers' weights, from ``data``'s domains (when the loss is on)."""
        if self.semantic is not None:
            self.semantic.load(data)

    # ------------------------------------------------------------------ training
    def batch_item(self, batch: dict[str, Tensor], index: int) -> tuple[Tensor, Tensor]:
        """(a, b) of the ``index``-th real batch; labels stay out of training."""
        return batch["a"][index], batch["b"][index]

    def _g_loss(self, item: tuple[Tensor, Tensor], ctx: StepContext) -> tuple[Tensor, dict]:
        """Both Gs' update: adversarial, cycle and identity losses (eq. 3, sec. 5.2), and the
        semantic loss when on; its fakes are kept for the D phase."""
        a, b = item
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        adversarial = self.loss.g_loss(full(self.d_b(fake_b))) + self.loss.g_loss(
            full(self.d_a(fake_a))
        )
        cycle = _l1(self.g_ba(fake_b), a) + _l1(self.g_ab(fake_a), b)
        loss = self.adversarial_weight * adversarial + self.cycle_weight * cycle
        stats = {diag.G_ADV: adversarial.detach(), diag.CYCLE: cycle.detach()}
        if self.identity:
            identity = _l1(self.g_ab(b), b) + _l1(self.g_ba(a), a)
            loss = loss + self.identity_weight * self.cycle_weight * identity
            stats[diag.IDENTITY] = identity.detach()
        if self.semantic is not None:  # CyCADA, eq. 4
            semantic = self.semantic("a", a, fake_b) + self.semantic("b", b, fake_a)
            loss = loss + self.semantic_weight * semantic
            stats[diag.SEMANTIC] = semantic.detach()
        ctx.shared["fake_a"], ctx.shared["fake_b"] = fake_a.detach(), fake_b.detach()
        return loss, {diag.G_LOSS: loss.detach(), **stats}

    def _d_loss(self, item: tuple[Tensor, Tensor], ctx: StepContext) -> tuple[Tensor, dict]:
        """Both Ds' update (one D step each, ``Family.d_step``) on their domain's real
        images and the pooled fakes of the G phase."""
        a, b = item
        fake_a = self.pool_a.query(ctx.shared["fake_a"], ctx.generator)
        fake_b = self.pool_b.query(ctx.shared["fake_b"], ctx.generator)
        stats: dict[str, Tensor] = {}
        total = None
        for name, d, real, fake in (("a", self.d_a, a, fake_a), ("b", self.d_b, b, fake_b)):
            step = self.d_step(d, real, fake, ctx)
            total = step.loss if total is None else total + step.loss
            stats[diag.part_loss(name)] = step.loss.detach()
            if step.accuracy is not None:
                stats[diag.part_accuracy(name)] = step.accuracy
        if diag.part_accuracy("a") in stats:
            accuracies = stats[diag.part_accuracy("a")], stats[diag.part_accuracy("b")]
            stats[diag.D_ACC] = (accuracies[0] + accuracies[1]) / 2
        return total, {diag.D_LOSS: total.detach(), **stats}

    # ------------------------------------------------------------------ sampling
    def translate(self, source: Tensor, direction: str = "ab") -> Tensor:
        """G_AB(source) (``ab``) or G_BA(source) (``ba``), in eval mode, EMA when kept."""
        return apply(self.sampling_net(f"g_{direction}"), source)

    def translations(self, data: Any, n: int) -> list[Translation]:
        """Both directions on the validation images, with their round trips."""
        items = data.val_items(n)
        out = []
        for there, back, src, dst in (("ab", "ba", "a", "b"), ("ba", "ab", "b", "a")):
            output = self.translate(items[src], there)
            out.append(
                Translation(
                    name=there,
                    source=items[src],
                    output=output.cpu(),
                    target=None,
                    labels=items.get(f"label_{src}"),
                    domain=data.domain_data(dst),
                    cycle=self.translate(output, back).cpu(),
                )
            )
        return out

    def pictures(
        self, data: Any = None, n: int = 64, columns: int = 8, walks: int = 4, walk_steps: int = 10
    ) -> dict[str, tuple[Tensor, int]]:
        """``grid``: A | G_AB(A) | G_BA(G_AB(A)); ``grid_ba``: B | G_BA(B) | G_AB(G_BA(B))."""
        return {
            ("grid" if t.name == "ab" else f"grid_{t.name}"): side_by_side(
                [t.source, t.output, t.cycle]
            )
            for t in self.translations(data, max(1, n // columns))
        }


def _l1(x: Tensor, y: Tensor) -> Tensor:
    return (x.float() - y.float()).abs().mean()
