"""Pure ``nn.Module`` networks: typed constructors, shapes checked at the boundary."""

from torch import nn

from ganlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.nets.layers import ConditionalBatchNorm2d, ProjectionHead, make_norm2d
from ganlab.nets.mlp import MLP, Maxout
from ganlab.nets.resnet import ResNetDiscriminator, ResNetGenerator


def has_batchnorm(module: nn.Module) -> bool:
    """True when any submodule is a BatchNorm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


__all__ = [
    "MLP",
    "ConditionalBatchNorm2d",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Maxout",
    "ProjectionHead",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "has_batchnorm",
    "make_norm2d",
]
