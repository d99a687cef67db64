"""Pure ``nn.Module`` networks: typed constructors, shapes checked at the boundary."""

from torch import nn

from ganlab.nets.mlp import MLP, Maxout


def has_batchnorm(module: nn.Module) -> bool:
    """True when any submodule is a BatchNorm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


__all__ = ["MLP", "Maxout", "has_batchnorm"]
