"""Pieces shared by the image-to-image networks (Pix2Pix U-Net and PatchGAN, CycleGAN ResNet):
the normalization choice, the weight initialization of both papers, and the receptive field
of a stack of convolutions."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from ganlab.nets.layers import check_choice

#: Normalizations of the translation nets: ``batch`` (Pix2Pix, Isola et al. 2017, sec. 3.3),
#: ``instance`` (CycleGAN, Zhu et al. 2017, sec. 4; Ulyanov et al. 2016) or ``none``.
TRANSLATION_NORMS = ("batch", "instance", "none")


def norm2d(who: str, name: str, channels: int) -> nn.Module:
    """BatchNorm2d, InstanceNorm2d without affine parameters (as the reference code of both
    papers), or Identity; ``who`` names the network in the error for an unknown ``name``."""
    check_choice(who, "norm", name, TRANSLATION_NORMS)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Only a conv without a norm after it has a bias: BatchNorm's shift replaces it, and
    instance norm (no affine) subtracts it out. The reference code keeps one before instance
    norm; it gets no gradient but rounding noise, which Adam's normalized steps then follow."""
    return norm == "none"


def init_normal(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Conv weights N(0, std), BatchNorm gains N(1, std), biases 0: "weights were initialized
    from a Gaussian distribution with mean 0 and standard deviation 0.02" (Isola et al. 2017,
    sec. 6.2; Zhu et al. 2017, sec. 7.1). Returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def receptive_field(convs: Iterable[nn.Conv2d]) -> int:
    """Side of the input square that one output unit of a chain of ``convs`` sees (pointwise
    layers between them do not change it): 1 + sum over layers of (k_l - 1)·d_l·prod of the
    strides before l (Araujo et al. 2019, eq. 2)."""
    field, jump = 1, 1
    for conv in convs:
        kernel, stride, dilation = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field
