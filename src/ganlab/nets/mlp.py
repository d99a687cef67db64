"""Multi-layer perceptrons for generators and discriminators on vector data."""

from __future__ import annotations

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
    ) -> None:
        super().__init__()
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("norm", norm, NORMS)
        for key, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width)):
            if value < 1:
                raise ValueError(f"MLP: {key} must be >= 1, got {value}")
        if depth < 0:
            raise ValueError(f"MLP: depth must be >= 0, got {depth}")
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += _hidden_layer(in_dim if i == 0 else width, width, activation, pieces, norm)
        layers.append(nn.Linear(width if depth else in_dim, out_dim))
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
        return self.net(x)  # (B, out_dim)
