"""The image-translation networks: Pix2Pix U-Net and PatchGAN, CycleGAN ResNet generator."""

import re

import pytest
import torch
from torch import nn

from ganlab.nets import CycleGANGenerator, PatchGANDiscriminator, UNetGenerator
from ganlab.nets.cyclegan import ResidualBlock, default_blocks
from ganlab.nets.patchgan import patchgan_receptive_field


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("c_in, c_out", [(1, 3), (3, 1)])
def test_generators_map_images_to_images_in_range(size, c_in, c_out):
    x = torch.randn(2, c_in, size, size)
    for net in (
        UNetGenerator(c_in, c_out, size, width=8),
        CycleGANGenerator(c_in, c_out, size, width=8),
    ):
        y = net(x)
        assert y.shape == (2, c_out, size, size)
        assert y.abs().max() <= 1  # tanh


def test_unet_depth_reaches_a_1x1_bottleneck():
    for size, depth in [(16, 4), (32, 5), (64, 6), (256, 8)]:
        net = UNetGenerator(1, 1, size, width=4)
        assert net.depth == depth == len(net.down) == len(net.up)
    net = UNetGenerator(1, 1, 32, width=4)
    h = torch.randn(2, 1, 32, 32)
    for down in net.down:
        h = down(h)
    assert h.shape == (2, 32, 1, 1)  # widths 4, 8, 16, 32, 32: capped at 8·width


@pytest.mark.parametrize("n_layers, size, out", [(1, 32, 14), (2, 32, 6), (3, 32, 2), (3, 64, 6)])
def test_patchgan_output_map(n_layers, size, out):
    net = PatchGANDiscriminator(4, size, width=8, n_layers=n_layers)
    y = net(torch.randn(3, 4, size, size))
    assert y.shape == (3, 1, out, out) and net.output_shape == (1, out, out)
    assert not isinstance(net.net[-1], nn.Sigmoid)  # raw scores for the loss objects


def test_reference_parameter_counts_at_256px():
    """The pix2pix/CycleGAN reference code prints 54.414 M (unet_256), 2.769 M (basic D on
    6 channels) and 11.378 M (resnet_9blocks). ganlab's ResNet has 5,248 fewer: the biases
    of the convs before instance norm, which the norm subtracts out (``conv_bias``)."""
    with torch.device("meta"):
        counts = [
            sum(p.numel() for p in net.parameters())
            for net in (
                UNetGenerator(3, 3, 256),
                PatchGANDiscriminator(6, 256),
                CycleGANGenerator(3, 3, 256),
            )
        ]
    assert counts == [54_414_531, 2_768_705, 11_378_179 - 5_248]


def test_wrong_input_shapes_name_expected_and_actual():
    cases = [
        (UNetGenerator(1, 3, 32, width=4), (2, 3, 32, 32), "(B, 1, 32, 32)"),
        (CycleGANGenerator(3, 3, 32, width=4), (2, 3, 16, 16), "(B, 3, 32, 32)"),
        (PatchGANDiscriminator(4, 32, width=4), (2, 3, 32, 32), "(B, 4, 32, 32)"),
    ]
    for net, shape, expected in cases:
        words = f"{type(net).__name__} expects images {expected}, got {shape}"
        with pytest.raises(ValueError, match=re.escape(words)):
            net(torch.zeros(shape))


def test_bad_constructor_arguments():
    for make, words in [
        (lambda: UNetGenerator(1, 1, 48), "image_size must be a power of two >= 8, got 48"),
        (lambda: UNetGenerator(1, 1, 32, dropout=1.0), "dropout must be in [0, 1)"),
        (lambda: UNetGenerator(1, 1, 32, norm="layer"), "norm must be one of batch, instance"),
        (lambda: PatchGANDiscriminator(2, 16), "n_layers=3 needs image_size >= 24, got 16"),
        (lambda: PatchGANDiscriminator(2, 32, n_layers=0), "n_layers must be >= 1"),
        (lambda: CycleGANGenerator(1, 1, 30), "multiple of 4 and >= 8, got 30"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            make()


# ---------------------------------------------------------------- U-Net behaviour


def test_outermost_skip_carries_the_input_when_the_inner_path_is_cut():
    net = UNetGenerator(1, 1, 16, width=8, dropout=0.0).eval()
    x = torch.randn(2, 1, 16, 16)
    before = net(x)
    net.down[1] = Zeros(16)  # every deeper feature (and the bottleneck) no longer sees x
    a, b = net(x), net(x + torch.randn_like(x))
    assert not torch.equal(before, a)
    assert not torch.allclose(a, b)  # still a function of x: through the outermost skip only
    net.down[0] = Zeros(8)  # cut the skip too: the output no longer depends on the input
    assert torch.equal(net(x), net(torch.zeros_like(x)))


class Zeros(nn.Module):
    """Stands in for an encoder layer: zeros of ``channels`` at half the input's size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, _, height, width = h.shape
        return h.new_zeros(b, self.channels, height // 2, width // 2)  # (B, C, H/2, W/2)


def test_bottleneck_gives_every_output_pixel_the_whole_image():
    net = UNetGenerator(1, 1, 32, width=4, dropout=0.0).eval().double()
    x = torch.randn(1, 1, 32, 32, dtype=torch.double, requires_grad=True)
    net(x)[0, 0, 0, 0].backward()
    assert x.grad[0, 0, 31, 31] != 0  # the far corner, out of any conv stack's local reach


def test_dropout_is_noise_in_train_mode_only():
    net = UNetGenerator(1, 1, 32, width=8)
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 for m in dropouts)  # CD512-CD1024-CD1024
    assert all(isinstance(up[-1], nn.Dropout) for up in net.up[:3])
    x = torch.randn(4, 1, 32, 32)
    assert not torch.equal(net(x), net(x))  # BN in train mode is deterministic: dropout
    net.eval()
    assert torch.equal(net(x), net(x))
    quiet = UNetGenerator(1, 1, 32, width=8, dropout=0.0)
    assert torch.equal(quiet(x), quiet(x))


def test_no_norm_on_the_first_layer_and_the_bottleneck():
    net = UNetGenerator(1, 1, 32, width=4)
    norms = [any(isinstance(m, nn.BatchNorm2d) for m in down) for down in net.down]
    assert norms == [False, True, True, True, False]
    instance = UNetGenerator(1, 1, 32, norm="instance")
    assert any(isinstance(m, nn.InstanceNorm2d) for m in instance.modules())


# ---------------------------------------------------------------- receptive fields


def measured_receptive_field(net: nn.Module, channels: int, size: int) -> int:
    """Side of the input region with a nonzero gradient of the centre output unit, with
    positive weights (no cancellation) and no norm layers (no coupling across positions)."""
    net = net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.1, 1.0)
    x = torch.randn(1, channels, size, size, dtype=torch.double, requires_grad=True)
    out = net(x)
    c = out.shape[-1] // 2
    out[0, 0, c, c].backward()
    rows = x.grad[0].abs().sum(0).sum(1).nonzero()
    cols = x.grad[0].abs().sum(0).sum(0).nonzero()
    assert 0 < rows.min() and rows.max() < size - 1  # not clipped by the border
    assert rows.max() - rows.min() == cols.max() - cols.min()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("n_layers, expected", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_matches_the_gradient(n_layers, expected):
    net = PatchGANDiscriminator(2, 128, width=4, n_layers=n_layers, norm="none")
    assert patchgan_receptive_field(n_layers) == net.receptive_field == expected
    assert measured_receptive_field(net, 2, 128) == expected


def test_receptive_field_of_the_larger_patchgans():
    assert [patchgan_receptive_field(n) for n in (4, 5)] == [142, 286]  # 286: the ImageGAN


# ---------------------------------------------------------------- CycleGAN generator


def test_cyclegan_blocks_and_layers():
    assert [default_blocks(s) for s in (16, 32, 64, 128, 256, 512)] == [3, 3, 4, 6, 9, 9]
    net = CycleGANGenerator(3, 3, 32, width=8)
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    assert net.n_blocks == len(blocks) == 3
    assert any(isinstance(m, nn.ReflectionPad2d) for m in net.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    assert CycleGANGenerator(3, 3, 32, width=8, n_blocks=5).n_blocks == 5


def test_residual_block_is_the_identity_when_its_body_is_zero():
    block = ResidualBlock(8, "instance")
    assert block.body[5].bias is None  # instance norm follows: a bias would cancel out
    nn.init.zeros_(block.body[5].weight)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(block(x), x)


def test_weights_follow_the_papers_init():
    net = UNetGenerator(3, 3, 64)
    conv = net.down[3][1]
    assert abs(conv.weight.std().item() - 0.02) < 0.002 and abs(conv.weight.mean().item()) < 0.001
