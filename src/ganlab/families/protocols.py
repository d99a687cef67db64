"""What callbacks and commands need of a family beyond the ``Family`` contract
(``ganlab.families.base``): small protocols they type against, never a concrete family.

A family has these abilities by having the methods (``typing.Protocol``: no base class to
inherit); ``isinstance(family, CanSample)`` asks at run time. The latent GANs can sample
and show D(x) on points; Pix2Pix and CycleGAN can translate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import Tensor

if TYPE_CHECKING:
    import torch

    from ganlab.families.translation import Translation
    from ganlab.latent import Latent


@runtime_checkable
class CanSample(Protocol):
    """Generates samples from noise (and a class): the metrics and sample callbacks, the
    ``sample``, ``evaluate`` and ``arithmetic`` commands."""

    #: the latent space G samples from
    latent: Latent
    #: classes of a class-conditional G (0: unconditional)
    num_classes: int

    def generate(
        self,
        n: int,
        z: Tensor | None = None,
        y: Tensor | None = None,
        batch_size: int = 10_000,
    ) -> Tensor:
        """``n`` samples, or G(z, y); the default z and labels are the fixed evaluation ones."""
        ...

    def fixed_z(self, n: int, device: torch.device | str | None = None) -> Tensor:
        """The evaluation z: the same ``n`` vectors at every call and on every rank."""
        ...

    def fixed_labels(self, n: int, device: torch.device | str | None = None) -> Tensor | None:
        """The evaluation labels (None for an unconditional model)."""
        ...

    def grid(self, n: int = 64, columns: int = 8) -> tuple[Tensor, int]:
        """A grid of samples from the fixed z and its images per row."""
        ...

    def interpolation(self, rows: int = 4, steps: int = 10) -> Tensor:
        """Walks between fixed z pairs, ``steps`` images per row."""
        ...


@runtime_checkable
class CanCritic(Protocol):
    """Scores samples with D: the toy evaluator's plot of D(x)."""

    def critic(self, x: Tensor) -> Tensor:
        """D's raw output on ``x``, in eval mode."""
        ...


@runtime_checkable
class CanTranslate(Protocol):
    """Translates images between domains: the translation metrics callback and the
    ``translate`` command."""

    #: how the family is called in messages
    name: str
    #: direction -> the part of the data it translates ({"ab": "input"}, {"ab": "a", ...})
    sources: dict[str, str]

    def translate(self, source: Tensor, direction: str = "ab") -> Tensor:
        """``source`` translated in ``direction``, in eval mode, without gradients."""
        ...

    def translations(self, data: Any, n: int) -> list[Translation]:
        """Each direction on ``n`` validation items, for the metrics."""
        ...
