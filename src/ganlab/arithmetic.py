"""Latent arithmetic on a trained latent GAN (Radford et al. 2016, sec. 6.3.2 and fig. 7).

Samples are drawn from a pool of the run's fixed evaluation z (the first 64 are the sample
grid's, row by row). Groups of them are chosen by

- ``label:K``: the domain classifier's label K (digits, MNIST; stacked sets 100 d0 + 10 d1 + d2);
- ``thick`` / ``thin``: the top / bottom ``quantile`` of stroke thickness, measured as ink
  mass (the mean intensity of the image);
- ``right`` / ``left``: the top / bottom ``quantile`` of slant, measured from the image's
  second moments (the shear that would deskew it);
- ``z:I,J,...``: the given indices of the fixed z (grid positions).

An expression ``A-B+C`` (any signed sum of groups) averages each group's z, combines the
means and draws G(z̄_A - z̄_B + z̄_C) with variations around it (noise added to z, as the
DCGAN paper adds ±0.25). A direction ``A-B`` (e.g. ``thick-thin``) moves samples along
z̄_A - z̄_B.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ganlab.errors import UserError
from ganlab.families.protocols import CanSample
from ganlab.latent import group_means, walk

Labeler = Callable[[Tensor], Tensor]  # images (N, C, H, W) -> labels (N,)
ATTRIBUTE_GROUPS = {"thick": ("ink", 1), "thin": ("ink", -1), "right": ("slant", 1),
                    "left": ("slant", -1)}  # fmt: skip
GROUP_HELP = "label:K, thick, thin, right, left or z:I,J,..."


def ink(images: Tensor) -> Tensor:
    """Ink mass of each image (N, C, H, W) in [-1, 1]: the mean intensity in [0, 1] (N,),
    which grows with stroke thickness at a fixed digit size."""
    return ((images.float() + 1) / 2).mean(dim=(1, 2, 3))


def slant(images: Tensor) -> Tensor:
    """Slant of each image (N,): the shear -mu_11 / mu_02 of the intensity's central moments
    (rows down, columns right), > 0 when the top leans right (the deskewing shear of
    MNIST's classic preprocessing, with the opposite sign)."""
    weight = ((images.float() + 1) / 2).mean(dim=1)  # (N, H, W) intensity
    h, w = weight.shape[1:]
    rows = torch.arange(h, dtype=weight.dtype, device=weight.device)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=weight.dtype, device=weight.device)[None, :].expand(h, w)
    mass = weight.sum(dim=(1, 2)).clamp_min(1e-8)

    def moment(f: Tensor) -> Tensor:
        return (weight * f).sum(dim=(1, 2)) / mass

    r, c = rows - moment(rows)[:, None, None], cols - moment(cols)[:, None, None]
    return -moment(r * c) / moment(r * r).clamp_min(1e-8)


ATTRIBUTES: dict[str, Callable[[Tensor], Tensor]] = {"ink": ink, "slant": slant}


def parse(expression: str) -> list[tuple[int, str]]:
    """``"thick-thin+label:7"`` -> [(1, "thick"), (-1, "thin"), (1, "label:7")]."""
    text = expression.replace(" ", "")
    terms = re.findall(r"([+-]?)([^+-]+)", text)
    if not terms or "".join(s + g for s, g in terms) != text:
        raise UserError(f"cannot read {expression!r}: write groups joined by + and -, e.g. "
                        "thick-thin+label:7")  # fmt: skip
    return [(-1 if sign == "-" else 1, group) for sign, group in terms]


def select(group: str, images: Tensor, quantile: float, labels: Labeler | None) -> Tensor:
    """Indices (into the pool) of the samples in ``group``."""
    n = len(images)
    if group in ATTRIBUTE_GROUPS:
        name, sign = ATTRIBUTE_GROUPS[group]
        k = max(1, round(quantile * n))
        return torch.argsort(sign * ATTRIBUTES[name](images), descending=True)[:k]
    kind, _, value = group.partition(":")
    if kind == "z" and re.fullmatch(r"\d+(,\d+)*", value):
        index = torch.tensor([int(v) for v in value.split(",")])
        if int(index.max()) >= n:
            raise UserError(f"{group}: the pool holds z 0..{n - 1}: raise pool=...")
        return index
    if kind == "label" and value.isdigit():
        if labels is None:
            raise UserError(f"{group} needs the data's domain classifier; this run has none: "
                            f"choose groups by {GROUP_HELP}")  # fmt: skip
        members = (labels(images) == int(value)).nonzero().flatten().cpu()
        if members.numel() == 0:
            raise UserError(f"{group}: no sample of the pool of {n} has label {value}: "
                            "raise pool=...")  # fmt: skip
        return members
    raise UserError(f"unknown group {group!r}: use {GROUP_HELP}")


@dataclass
class Pool:
    """The samples groups are chosen from: the first ``n`` fixed z and their images."""

    z: Tensor
    images: Tensor

    @classmethod
    def draw(cls, family: CanSample, n: int, y: Tensor | None = None) -> Pool:
        z = family.fixed_z(n)
        images = family.generate(n, z=z, y=None if y is None else y[:1].expand(n))
        if images.dim() != 4:
            raise UserError("latent arithmetic draws images; this model makes points")
        return cls(z, images.float())


@dataclass
class Arithmetic:
    """The figure of an expression: one row per group (up to ``columns - 1`` members, then
    the image of the group's mean z), then the result G(sum of signed means) followed by
    ``columns - 1`` variations. ``images`` (rows x columns, C, H, W) in [-1, 1]."""

    images: Tensor
    columns: int
    groups: dict[str, Tensor]  # group -> pool indices
    result: Tensor  # the combined z (D,)


def arithmetic(
    family: CanSample,
    expression: str,
    pool: int = 2000,
    quantile: float = 0.1,
    noise: float = 0.25,
    columns: int = 8,
    labels: Labeler | None = None,
    y: Tensor | None = None,
) -> Arithmetic:
    """The DCGAN paper's figure 7 for ``expression`` (see the module docstring) from a pool
    of ``pool`` fixed z. ``labels`` classifies images (for ``label:K`` groups); ``y`` (1,) is
    the class of every image of a conditional model. Variations add ``noise`` x N(0, I)
    (x U(-1, 1) for uniform z) to the result's z, from a seeded stream."""
    if columns < 2:
        raise UserError(f"columns must be >= 2 (members and the mean), got {columns}")
    terms = parse(expression)
    drawn = Pool.draw(family, pool, y)
    groups = {g: select(g, drawn.images, quantile, labels) for _, g in terms}
    means = group_means(drawn.z, [groups[g] for _, g in terms])  # (G, D)
    signs = torch.tensor([s for s, _ in terms], dtype=means.dtype, device=means.device)
    result = (signs[:, None] * means).sum(dim=0)  # (D,)
    rows = []
    for (_, g), mean in zip(terms, means, strict=True):
        members = drawn.images[groups[g][: columns - 1]]
        blank = torch.full_like(drawn.images[:1], -1).expand(columns - 1 - len(members), -1,
                                                             -1, -1)  # fmt: skip
        rows += [members, blank, _draw(family, mean[None], y)]
    gen = torch.Generator(device=result.device).manual_seed(family.seed + 2)
    shake = torch.randn if family.latent.dist == "normal" else _uniform_pm1
    around = result + noise * shake((columns - 1, result.numel()), generator=gen,
                                    device=result.device)  # fmt: skip
    rows.append(_draw(family, torch.cat([result[None], around]), y))
    return Arithmetic(torch.cat(rows), columns, groups, result)


def _uniform_pm1(shape: tuple[int, ...], generator: torch.Generator, device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device) * 2 - 1


def _draw(family: CanSample, z: Tensor, y: Tensor | None) -> Tensor:
    return family.generate(len(z), z=z, y=None if y is None else y[:1].expand(len(z))).float()


def direction(
    family: CanSample,
    expression: str = "thick-thin",
    pool: int = 2000,
    quantile: float = 0.1,
    labels: Labeler | None = None,
    y: Tensor | None = None,
) -> Tensor:
    """The latent direction z̄_A - z̄_B of a two-group expression ``A-B`` (D,)."""
    terms = parse(expression)
    if [s for s, _ in terms] != [1, -1]:
        raise UserError(f"a direction is two groups A-B (e.g. thick-thin), got {expression!r}")
    drawn = Pool.draw(family, pool, y)
    index = [select(g, drawn.images, quantile, labels) for _, g in terms]
    a, b = group_means(drawn.z, index)
    return a - b


def attribute_walk(
    family: CanSample, d: Tensor, rows: int = 4, steps: int = 9, span: float = 1.0,
    y: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """Images (rows x steps, C, H, W): the first ``rows`` fixed z moved along ``d`` by
    ``t`` in [-span, span] (``steps`` values); row i starts from fixed z i."""
    start = family.fixed_z(rows)
    t = torch.linspace(-span, span, steps, device=start.device)
    return _draw(family, walk(start, d, t).flatten(0, 1), y)  # (rows * steps, C, H, W)


def domain_labeler(config, device: str | torch.device = "cpu") -> Labeler | None:
    """The run's domain classifier as a labeler (trained on the data and cached on first
    use; stacked sets: 100 d0 + 10 d1 + d2), or None when the data has none."""
    from ganlab.checkpoints import rebuild_data
    from ganlab.metrics.classifier import load_or_train
    from ganlab.metrics.scorer import labeller

    data = rebuild_data(config)  # never downloads to, or creates, a path the checkpoint names
    if data.spec.classifier is None:
        return None
    data.prepare_data()
    classifier, _ = load_or_train(data.spec.classifier, data, device=device)
    return labeller(classifier, data.spec)  # the data's modes, as the metrics count them


def figure(
    trained,
    expression: str | None = None,
    along: str | None = None,
    *,
    pool: int = 2000,
    quantile: float = 0.1,
    noise: float = 0.25,
    span: float = 1.0,
    rows: int = 4,
    steps: int = 9,
    columns: int = 8,
    cls: int | None = None,
) -> tuple[Tensor, int]:
    """What ``python -m ganlab.sample arithmetic=... | direction=...`` draws for a restored
    run (``ganlab.checkpoints.Trained``): (images, images per row)."""
    if (expression is None) == (along is None):
        raise UserError("give arithmetic=A-B+C or direction=A-B (one of them)")
    if not 0 < quantile <= 0.5 or pool < 2:
        raise UserError(f"quantile must be in (0, 0.5] and pool >= 2, got {quantile}, {pool}")
    family: CanSample = trained.family
    y = _class(family, cls)
    text = expression if expression is not None else along
    needs_labels = any(g.startswith("label:") for _, g in parse(text))
    labels = domain_labeler(trained.config, trained.device) if needs_labels else None
    if expression is not None:
        result = arithmetic(family, expression, pool, quantile, noise, columns, labels, y)
        return result.images, result.columns
    d = direction(family, along, pool, quantile, labels, y)
    return attribute_walk(family, d, rows, steps, span, y), steps


def _class(family: CanSample, cls: int | None) -> Tensor | None:
    """The class every image is drawn with (a conditional model's z carries the style)."""
    if not family.num_classes:
        if cls is not None:
            raise UserError("class=... needs a class-conditional model; this one is unconditional")
        return None
    if cls is None or not 0 <= cls < family.num_classes:
        raise UserError(
            f"latent arithmetic on a class-conditional model needs class=C in "
            f"[0, {family.num_classes}): every image is drawn with that class"
        )
    return torch.tensor([cls], device=family.fixed_z(1).device)
