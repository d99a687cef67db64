"""Pure ``nn.Module`` networks: typed constructors, shapes checked at the boundary."""

from torch import nn

from ganlab.nets.cyclegan import CycleGANGenerator
from ganlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.nets.layers import ConditionalBatchNorm2d, ProjectionHead, make_norm2d
from ganlab.nets.mlp import MLP, Maxout
from ganlab.nets.patchgan import PatchGANDiscriminator, patchgan_receptive_field
from ganlab.nets.resnet import ResNetDiscriminator, ResNetGenerator
from ganlab.nets.small_dcgan import SmallDCGANDiscriminator, SmallDCGANGenerator
from ganlab.nets.unet import UNetGenerator


def has_batchnorm(module: nn.Module) -> bool:
    """True when any submodule is a BatchNorm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


__all__ = [
    "MLP",
    "ConditionalBatchNorm2d",
    "CycleGANGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Maxout",
    "PatchGANDiscriminator",
    "ProjectionHead",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SmallDCGANDiscriminator",
    "SmallDCGANGenerator",
    "UNetGenerator",
    "has_batchnorm",
    "make_norm2d",
    "patchgan_receptive_field",
]
