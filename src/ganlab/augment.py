"""Differentiable augmentation of every image D sees (``augment=diffaug``, ``augment=ada``).

With few images D memorises the training set. DiffAugment (Zhao et al. 2020) and ADA
(Karras et al. 2020) transform every image D sees, real and fake alike, in D's step and in
G's (G's loss is computed on D(T(G(z)))), with differentiable transforms so G's gradient
passes through them. Because both sides go through the same transforms, D compares T(real)
with T(fake) and G is pushed to match the data itself, not its transformed copies (a
transform applied to the reals only would "leak" into the samples).

The transforms follow DiffAugment's reference code (mit-han-lab/data-efficient-gans,
``DiffAugment_pytorch.py``): ``color`` (brightness, saturation, contrast), ``translation``
(integer shifts up to 1/8 of the size, zero padding) and ``cutout`` (a square of half the
size set to 0). Every random draw comes from the step's generator (``StepContext.generator``,
reseeded per step and rank), so a resumed run draws what an uninterrupted one would.

The family calls ``Augment.forward`` on each batch D sees (``Family.d_view``), and
``observe`` with D's raw outputs on the reals of each D update (ADA's overfitting signal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ganlab.collectives import mean_tensors_over_ranks

#: a transform: (images (B, C, H, W), the step's generator) -> images of the same shape
Transform = Callable[[Tensor, torch.Generator], Tensor]

#: the diagnostics of ADA, logged as ``train/<key>``: its probability p and its overfitting
#: signal r_t = E[sign(D(real))] of the last adjustment
ADA_P, ADA_RT = "ada_p", "ada_rt"


def _uniform(x: Tensor, generator: torch.Generator) -> Tensor:
    """One U(0, 1) draw per image, (B, 1, 1, 1), in x's dtype."""
    u = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=generator.device)
    return u.to(device=x.device, dtype=x.dtype)


def brightness(x: Tensor, generator: torch.Generator) -> Tensor:
    """Adds U(-0.5, 0.5) to each image."""
    return x + (_uniform(x, generator) - 0.5)


def saturation(x: Tensor, generator: torch.Generator) -> Tensor:
    """Scales each image's distance to its channel mean by U(0, 2) (no-op for 1 channel)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x: Tensor, generator: torch.Generator) -> Tensor:
    """Scales each image's distance to its mean by U(0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def shift(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Each image moved by (dy[i], dx[i]) whole pixels (down, right), zero-padded: out[i, :,
    h, w] = x[i, :, h - dy[i], w - dx[i]], 0 outside. Differentiable in x (a gather)."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy.view(b, 1, 1).to(x.device)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx.view(b, 1, 1).to(x.device)
    # index the zero-padded image: rows -1 and h (and columns -1 and w) are the padding
    padded = nn.functional.pad(x, (1, 1, 1, 1))  # (B, C, H + 2, W + 2)
    rows, cols = rows.clamp(-1, h) + 1, cols.clamp(-1, w) + 1  # (B, H, 1), (B, 1, W)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)


def translation(x: Tensor, generator: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Each image shifted by whole pixels drawn uniformly in [-r, r] per axis, r = ratio x size
    (rounded), zero-padded (DiffAugment's ``rand_translation``)."""
    b, _, h, w = x.shape
    ry, rx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-ry, ry + 1, (b,), generator=generator, device=generator.device)
    dx = torch.randint(-rx, rx + 1, (b,), generator=generator, device=generator.device)
    return shift(x, dy, dx)


def cutout(x: Tensor, generator: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Each image with a square of ratio x size set to 0, centred uniformly on the image (the
    square clipped at the borders; DiffAugment's ``rand_cutout``)."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - sy % 2), (b, 1, 1), generator=generator, device=generator.device)
    cx = torch.randint(0, w + (1 - sx % 2), (b, 1, 1), generator=generator, device=generator.device)
    rows = torch.arange(h, device=cy.device).view(1, h, 1)
    cols = torch.arange(w, device=cx.device).view(1, 1, w)
    inside = (rows >= cy - sy // 2) & (rows < cy - sy // 2 + sy)
    inside = inside & (cols >= cx - sx // 2) & (cols < cx - sx // 2 + sx)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(device=x.device, dtype=x.dtype)


#: the policy words and the transforms each applies, in order (DiffAugment's ``AUGMENT_FNS``)
POLICIES: dict[str, tuple[Transform, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """The policy's words, from a list or a comma-separated string; ``ValueError`` naming an
    unknown one and the accepted ones."""
    words = policy.split(",") if isinstance(policy, str) else list(policy)
    words = [str(w).strip() for w in words if str(w).strip()]
    unknown = [w for w in words if w not in POLICIES]
    if unknown or not words:
        raise ValueError(
            f"augment.policy: {', '.join(unknown) or 'empty'} is not a transform: choose a list "
            f"of {', '.join(POLICIES)} (e.g. augment.policy=[color,translation])"
        )
    return tuple(words)


class Augment(nn.Module):
    """What D sees of a batch of images: the interface of an augmentation.

    A module, so state it keeps (ADA's p) is a buffer of the family: saved in the
    checkpoint, restored on resume, moved with the nets.
    """

    #: the data kind it transforms (``ganlab.data.spec.KINDS``)
    needs = "images"

    def forward(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """The batch ``x`` (B, C, H, W) as D sees it, drawing from ``generator``."""
        raise NotImplementedError

    def observe(self, real_out: Tensor) -> None:
        """Sees D's raw outputs (detached) on the reals of every D update."""

    def stats(self) -> dict[str, Tensor]:
        """Diagnostics of the augmentation (detached scalar tensors), logged as ``train/``."""
        return {}


class DiffAugment(Augment):
    """DiffAugment (Zhao et al. 2020): every transform of the policy on every image.

    Args:
        policy: the transforms, in order: words of ``color``, ``translation``, ``cutout``
            (a list, or one comma-separated string). The paper's choice for little data is
            all three.
    """

    def __init__(self, policy: str | Sequence[str] = ("color", "translation", "cutout")) -> None:
        super().__init__()
        self.policy = parse_policy(policy)

    def forward(self, x: Tensor, generator: torch.Generator) -> Tensor:
        for word in self.policy:
            for transform in POLICIES[word]:
                x = transform(x, generator)
        return x

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"


class ADA(Augment):
    """Adaptive discriminator augmentation (Karras et al. 2020): each transform of the policy
    is applied to each image with probability p, and p follows D's overfitting.

    Every ``interval`` D updates, r_t = E[sign(D(real))] over those updates (sec. 3, the
    overfitting heuristic; averaged over ranks, so every rank holds the same p) moves p by
    sign(r_t - target) x interval / ``ramp``, clipped to [0, 1] (stylegan2-ada-pytorch's
    ``adjust = sign(r_t - target) * batch * interval / (ada_kimg * 1000)``, with the speed
    counted in D updates rather than images). p, the running sums and the last r_t are
    buffers: checkpointed, and a resumed run adjusts as an uninterrupted one would. The
    whole computation stays on the device (no host read per step).

    Transforms with p < 1 per image keep the augmentation non-leaking (the paper's sec. 2.2:
    below p ~ 0.8 G cannot match the augmented data with transformed samples). ganlab's
    pipeline is DiffAugment's transforms (not ADA's 18: no rotations, scaling, filters).

    Args:
        policy: the transforms (words of ``color``, ``translation``, ``cutout``); each
            transform of a word is drawn on its own.
        target: the r_t that p steers to (0.6, the paper's); None keeps p fixed at ``p``.
        interval: D updates between adjustments (ADA's ``ada_interval``: 4).
        ramp: D updates over which p can go from 0 to 1 (ADA's 500k images at batch 64 are
            7,800 updates over a 25M-image run; ganlab's runs are thousands of steps).
        p: the starting probability (the fixed one when ``target`` is None).
    """

    def __init__(
        self,
        policy: str | Sequence[str] = ("translation", "color"),
        target: float | None = 0.6,
        interval: int = 4,
        ramp: int = 500,
        p: float = 0.0,
    ) -> None:
        super().__init__()
        if interval < 1 or ramp < 1:
            raise ValueError(
                f"augment.interval and augment.ramp must be >= 1, got {interval}, {ramp}"
            )
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augment.p must be in [0, 1], got {p}")
        if target is not None and not -1.0 <= target <= 1.0:
            raise ValueError(f"augment.target must be in [-1, 1] (an E[sign]), got {target}")
        self.policy = parse_policy(policy)
        self.target, self.interval, self.ramp = target, int(interval), int(ramp)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("rt", torch.zeros(()))  # r_t of the last adjustment
        self.register_buffer("signs", torch.zeros(()))  # sum of E[sign] since it
        self.register_buffer("pending", torch.zeros((), dtype=torch.long))  # updates since it

    def forward(self, x: Tensor, generator: torch.Generator) -> Tensor:
        p = self.p.to(device=x.device, dtype=x.dtype)
        for word in self.policy:
            for transform in POLICIES[word]:
                chosen = _uniform(x, generator) < p  # (B, 1, 1, 1): this image, this transform
                x = torch.where(chosen, transform(x, generator), x)
        return x

    @torch.no_grad()
    def observe(self, real_out: Tensor) -> None:
        (sign,) = mean_tensors_over_ranks([real_out.float().sign().mean()], differentiable=False)
        self.signs += sign.to(self.signs)
        self.pending += 1
        due = self.pending >= self.interval
        rt = self.signs / self.interval
        self.rt.copy_(torch.where(due, rt, self.rt))
        if self.target is not None:
            step = torch.sign(rt - self.target) * (self.interval / self.ramp)
            self.p.copy_(torch.where(due, (self.p + step).clamp(0.0, 1.0), self.p))
        self.signs.copy_(torch.where(due, torch.zeros_like(self.signs), self.signs))
        self.pending.copy_(torch.where(due, torch.zeros_like(self.pending), self.pending))

    def stats(self) -> dict[str, Tensor]:
        return {ADA_P: self.p.detach().clone(), ADA_RT: self.rt.detach().clone()}

    def extra_repr(self) -> str:
        return (
            f"policy={','.join(self.policy)}, target={self.target}, interval={self.interval}, "
            f"ramp={self.ramp}"
        )
