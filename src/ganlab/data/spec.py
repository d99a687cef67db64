"""What a data module provides, stated by the data module itself.

A family (``ganlab.families``) states what it needs; the pairing check compares the two
before training, so no code asks which data set it was given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The kinds of training item, and the batch each yields per training step (the leading
#: dims are (R, B): R = the family's batches per step, as ``DataModule.serve`` was told):
#: - ``points``: x (R, B, dim), or (x, y) when labelled;
#: - ``images``: x (R, B, C, H, W) in [-1, 1], or (x, y) when labelled;
#: - ``pairs``: {"input": (R, B, C_in, H, W), "target": (R, B, C_out, H, W),
#:   "label": (R, B)} (labels, when present, are for evaluation only);
#: - ``domains``: {"a": (R, B, C_a, H, W), "b": (R, B, C_b, H, W), "label_a": (R, B),
#:   "label_b": (R, B)} (two unpaired sets; labels for evaluation only).
KINDS = ("points", "images", "pairs", "domains")

#: How each kind is described in one-line messages.
KIND_WORDS = {
    "points": "vectors (points)",
    "images": "images",
    "pairs": "paired images (input, target)",
    "domains": "two unpaired image domains",
}


@dataclass(frozen=True)
class DataSpec:
    """What a data module provides.

    Args:
        kind: one of ``KINDS``.
        shapes: the shape of one sample of each part of an item: ``{"x": (dim,)}`` for
            points, ``{"x": (C, H, W)}`` for images, ``{"input": ..., "target": ...}`` for
            pairs, ``{"a": ..., "b": ...}`` for domains.
        num_classes: classes of the labels (0: unlabelled). For pairs and domains the
            labels are for evaluation only (label preservation), never shown to the nets.
        classifier: name of the domain classifier that scores samples of this data (and
            labels them), or None; for domains, ``{"a": ..., "b": ...}`` in ``classifiers``.
        classifiers: per part (domains), the classifier names.
        modes: the distinct modes of the data that mode coverage counts (a toy mixture's
            Gaussians, a labelled set's classes); 0: none known.
    """

    kind: str
    shapes: dict[str, tuple[int, ...]]
    num_classes: int = 0
    classifier: str | None = None
    classifiers: dict[str, str | None] = field(default_factory=dict)
    modes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"DataSpec: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def labelled(self) -> bool:
        return self.num_classes > 0

    @property
    def words(self) -> str:
        """The kind in words, for messages ("paired images (input, target)")."""
        return KIND_WORDS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """Plain containers (lists for shapes), for checkpoints."""
        out = asdict(self)
        out["shapes"] = {k: list(v) for k, v in self.shapes.items()}
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> DataSpec:
        shapes = {k: tuple(int(d) for d in v) for k, v in state["shapes"].items()}
        return cls(**{**state, "shapes": shapes})
