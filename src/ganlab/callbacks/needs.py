"""What a callback needs of a run to be built: the runner (``ganlab.train.build``) builds
only the callbacks whose needs the run's data and family meet, so no callback is built to
switch itself off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hydra

from ganlab.families.protocols import CanSample, CanTranslate


@dataclass(frozen=True)
class Needs:
    """Data of one of ``kinds`` (``DataSpec.kind``; empty: any) and a family with each of
    ``abilities`` (protocols of ``ganlab.families.protocols``: ``CanSample``,
    ``CanTranslate``, ...; a family has one by having its methods)."""

    kinds: tuple[str, ...] = ()
    abilities: tuple[type, ...] = ()

    def met(self, spec: Any, family: Any) -> bool:
        """Whether data of ``spec`` and ``family`` give what is needed."""
        kind = not self.kinds or spec.kind in self.kinds
        return kind and all(isinstance(family, ability) for ability in self.abilities)


#: a callback that declares nothing (Lightning's, a user's) needs nothing
ANYTHING = Needs()


def needs_of(node: Any) -> Needs:
    """The needs declared by the class a callback config names (``_target_``), before it is
    built: its ``needs`` attribute, else ``ANYTHING``."""
    target = hydra.utils.get_object(node["_target_"])
    return getattr(target, "needs", ANYTHING)


#: what the scoring of samples needs (the metrics callbacks and ``python -m ganlab.evaluate``
#: pick their work by these): image data or points, and a family that samples
SAMPLED_IMAGES = Needs(kinds=("images",), abilities=(CanSample,))
SAMPLED_POINTS = Needs(kinds=("points",), abilities=(CanSample,))
#: and of translations: a family that translates (its data is what it was trained on)
TRANSLATIONS = Needs(abilities=(CanTranslate,))
