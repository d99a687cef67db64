"""Multi-layer perceptrons for generators and discriminators on vector data."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "maxout")
NORMS = ("none", "batch", "layer")


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): a linear map to ``out * pieces`` features,
    then the max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)  # (B, out * pieces)
        return y.view(x.shape[0], -1, self.pieces).amax(dim=-1)  # (B, out)


def _activation(name: str) -> nn.Module:
    return {
        "relu": nn.ReLU(),
        "leaky_relu": nn.LeakyReLU(0.2),
        "tanh": nn.Tanh(),
        "elu": nn.ELU(),
    }[name]


def _hidden_layer(
    in_features: int, width: int, activation: str, pieces: int, norm: str
) -> list[nn.Module]:
    """Linear (or maxout) -> optional norm -> activation."""
    maxout = activation == "maxout"
    layers = [Maxout(in_features, width, pieces) if maxout else nn.Linear(in_features, width)]
    if norm == "batch":
        layers.append(nn.BatchNorm1d(width))
    elif norm == "layer":
        layers.append(nn.LayerNorm(width))
    if not maxout:
        layers.append(_activation(activation))
    return layers


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"MLP: unknown {name} {value!r}; choose one of {', '.join(choices)}")


class MLP(nn.Module):
    """A fully connected network (B, in_dim) -> (B, out_dim) with a linear output layer.

    Args:
        in_dim, out_dim: input and output features.
        width, depth: hidden units per layer and number of hidden layers.
        activation: one of ``relu``, ``leaky_relu`` (slope 0.2), ``tanh``, ``elu``, ``maxout``.
        pieces: linear pieces of each maxout unit (``activation="maxout"`` only).
        norm: ``none``, ``batch`` or ``layer`` normalization after each hidden linear layer.
        spectral_norm: spectral normalization (Miyato et al. 2018) on every linear layer.
        init_std: if set, weights ~ N(0, init_std²) and zero biases (PacGAN/DCGAN style).
        orthogonal_gain: if set, orthogonal weights (Saxe et al. 2014) scaled by it and zero
            biases (the unrolled GAN's toy code: gain 1.4).
        fourier_features: if > 0, the input x is first mapped to [x, sin(Bx), cos(Bx)] with
            B a fixed (fourier_features, in_dim) matrix drawn N(0, 1 / fourier_scale²)
            (random Fourier features, Tancik et al. 2020): an MLP of ReLUs resolves detail
            on the scale of fourier_scale (e.g. a toy mode's std) only through them.
        fourier_scale: the length scale of the Fourier features, in the input's units, or
            [smallest, largest]: each feature's scale drawn log-uniformly between them.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 128,
        depth: int = 3,
        activation: str = "relu",
        pieces: int = 5,
        norm: str = "none",
        spectral_norm: bool = False,
        init_std: float | None = None,
        orthogonal_gain: float | None = None,
        fourier_features: int = 0,
        fourier_scale: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__()
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, NORMS)
        for key, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width)):
            if value < 1:
                raise ValueError(f"MLP: {key} must be >= 1, got {value}")
        if depth < 0:
            raise ValueError(f"MLP: depth must be >= 0, got {depth}")
        lo, hi = fourier_scale if isinstance(fourier_scale, Sequence) else (fourier_scale,) * 2
        if fourier_features < 0 or not 0 < lo <= hi:
            raise ValueError(
                f"MLP: fourier_features must be >= 0 and fourier_scale > 0 (or [smallest, "
                f"largest] with 0 < smallest <= largest), got {fourier_features} and "
                f"{list(fourier_scale) if isinstance(fourier_scale, Sequence) else fourier_scale}"
            )
        self.in_dim, self.out_dim = in_dim, out_dim
        # drawn before the layers; without features nothing is drawn (runs are unchanged)
        freqs = None
        if fourier_features:
            log_scales = torch.empty(fourier_features, 1).uniform_(math.log(lo), math.log(hi))
            freqs = torch.randn(fourier_features, in_dim) / log_scales.exp()
        self.fourier: Tensor | None
        self.register_buffer("fourier", freqs)
        features = in_dim + 2 * fourier_features
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += _hidden_layer(features if i == 0 else width, width, activation, pieces, norm)
        layers.append(nn.Linear(width if depth else features, out_dim))
        self.net = nn.Sequential(*layers)
        self._init_weights(init_std, orthogonal_gain)
        if spectral_norm:
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.utils.parametrizations.spectral_norm(module)

    def _init_weights(self, std: float | None, gain: float | None) -> None:
        """N(0, std²) or orthogonal x gain weights and zero biases; PyTorch's default when
        neither is set."""
        if std is not None and gain is not None:
            raise ValueError("MLP: set init_std or orthogonal_gain, not both")
        if std is None and gain is None:
            return
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if gain is None:
                    nn.init.normal_(module.weight, 0.0, std)
                else:
                    nn.init.orthogonal_(module.weight, gain)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLP expects input (B, {self.in_dim}), got {tuple(x.shape)}")
        if self.fourier is not None:
            phase = x @ self.fourier.T  # (B, fourier_features)
            x = torch.cat([x, phase.sin(), phase.cos()], dim=1)
        return self.net(x)  # (B, out_dim)
