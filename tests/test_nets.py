"""Image networks: shapes and ranges, conditioning, spectral norm, init, the checks at the
boundary, and the double backward a gradient penalty needs."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.testing import assert_close

from ganlab.nets import (
    ConditionalBatchNorm2d,
    DCGANDiscriminator,
    DCGANGenerator,
    ProjectionHead,
    ResNetDiscriminator,
    ResNetGenerator,
    has_batchnorm,
    make_norm2d,
)
from ganlab.nets.layers import check_labels

ARCHS = {
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),
}
LATENT, WIDTH, B, K = 16, 8, 4, 3  # small nets: the whole file runs in seconds


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _labels(n: int = B) -> torch.Tensor:
    return torch.arange(n) % K


def _gradient_penalty(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, eq. 3) at x, with a graph for its backward."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


# --- shapes, ranges, attributes ---------------------------------------------------------


@pytest.mark.parametrize("num_classes", [0, K])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_range_and_attributes(arch, size, channels, num_classes):
    g_cls, d_cls = ARCHS[arch]
    g = g_cls(LATENT, size, channels, WIDTH, num_classes=num_classes)
    d = d_cls(size, channels, WIDTH, num_classes=num_classes)
    y = _labels() if num_classes else None
    x = g(torch.randn(B, LATENT), y)
    assert x.shape == (B, channels, size, size)
    assert x.abs().max() <= 1.0
    assert x.std() > 0  # not a constant image
    out = d(x, y)
    assert out.shape == (B, 1)
    assert torch.isfinite(out).all()
    assert (g.latent_dim, g.num_classes, d.num_classes) == (LATENT, num_classes, num_classes)
    assert g.image_shape == d.image_shape == (channels, size, size)


@pytest.mark.parametrize("arch", ARCHS)
def test_generator_ends_in_tanh(arch):
    """Huge output weights saturate the samples at +-1 without leaving [-1, 1]."""
    g = ARCHS[arch][0](LATENT, 16, 3, WIDTH)
    with torch.no_grad():
        g.out.weight.mul_(1e3)
    x = g(torch.randn(B, LATENT))
    assert x.abs().max() <= 1.0
    assert x.abs().max() > 0.99


def test_dcgan_matches_pytorch_example_layout():
    """64 px, width 64, RGB: the conv shapes of the PyTorch DCGAN example (pytorch/examples
    dcgan/main.py); we add a bias to G's output conv, D's first conv and D's output."""
    g, d = DCGANGenerator(100, 64, 3, 64), DCGANDiscriminator(64, 3, 64)
    ngf = ndf = 64
    g_ref = [(100, ngf * 8, 4, 4), (ngf * 8, ngf * 4, 4, 4), (ngf * 4, ngf * 2, 4, 4)]
    g_ref += [(ngf * 2, ngf, 4, 4), (ngf, 3, 4, 4)]
    d_ref = [(ndf, 3, 4, 4), (ndf * 2, ndf, 4, 4), (ndf * 4, ndf * 2, 4, 4)]
    d_ref += [(ndf * 8, ndf * 4, 4, 4)]
    conv_types = (nn.Conv2d, nn.ConvTranspose2d)
    assert [tuple(m.weight.shape) for m in g.modules() if isinstance(m, conv_types)] == g_ref
    assert [tuple(m.weight.shape) for m in d.modules() if isinstance(m, conv_types)] == d_ref
    assert d.head.linear.weight.shape == (1, ndf * 8 * 4 * 4)  # == the reference's 4x4 conv
    assert sum(p.numel() for p in g.parameters()) == 3_576_704 + 3
    assert sum(p.numel() for p in d.parameters()) == 2_765_568 + ndf + 1


@pytest.mark.parametrize("size, blocks", [(16, 3), (32, 4), (64, 5)])
def test_resnet_block_counts_and_feature_map(size, blocks):
    """32 px is the papers' net: 3 up blocks in G; D = optimized block, down block, two
    plain blocks, pooled from 8x8 (Miyato et al. 2018, table 4)."""
    g, d = ResNetGenerator(LATENT, size, 3, WIDTH), ResNetDiscriminator(size, 3, WIDTH)
    assert len(g.blocks) == {16: 2, 32: 3, 64: 4}[size]
    assert len(d.blocks) == blocks
    assert [b.downsample for b in d.blocks[-2:]] == [False, False]
    features = d.blocks(torch.randn(2, 3, size, size))
    assert features.shape == (2, WIDTH, 8, 8)


# --- conditioning ------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_conditional_generator_depends_on_y(arch):
    g = ARCHS[arch][0](LATENT, 16, 3, WIDTH, num_classes=K).eval()
    z = torch.randn(1, LATENT).expand(B, LATENT)
    a, b = g(z, torch.zeros(B, dtype=torch.long)), g(z, torch.ones(B, dtype=torch.long))
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-3 * a.abs().max()
    # in eval mode sample i depends only on (z_i, y_i)
    z, y = torch.randn(B, LATENT), _labels()
    batch = g(z, y)
    for i in range(B):
        assert_close(batch[i : i + 1], g(z[i : i + 1], y[i : i + 1]))


@pytest.mark.parametrize("arch", ARCHS)
def test_conditional_discriminator_is_a_projection(arch):
    """D(x, y) - D(x, y') = <embed(y) - embed(y'), h(x)> (Miyato & Koyama 2018, eq. 3)."""
    d = ARCHS[arch][1](16, 3, WIDTH, num_classes=K, spectral_norm=True).eval()
    features = []
    d.head.register_forward_hook(lambda mod, args, out: features.append(args[0]))
    x = torch.randn(B, 3, 16, 16)
    y0, y1 = torch.zeros(B, dtype=torch.long), torch.full((B,), 2)
    with torch.no_grad():
        diff = d(x, y0) - d(x, y1)
        embed = d.head.embed.weight  # the spectrally normalized weight
        expected = ((embed[0] - embed[2]) * features[0]).sum(dim=1, keepdim=True)
    assert diff.abs().min() > 0
    assert_close(diff, expected, rtol=1e-4, atol=1e-6)


def test_projection_head_formula():
    head = ProjectionHead(5, num_classes=K)
    h, y = torch.randn(B, 5), _labels()
    inner = (head.embed.weight[y] * h).sum(dim=1, keepdim=True)  # <embed(y), h>
    assert_close(head(h, y), h @ head.linear.weight.T + head.linear.bias + inner)
    plain = ProjectionHead(5)
    assert plain.embed is None
    assert_close(plain(h), h @ plain.linear.weight.T + plain.linear.bias)


def test_conditional_batchnorm_formula():
    cbn = ConditionalBatchNorm2d(4, K)
    with torch.no_grad():
        cbn.gain.weight.normal_()
        cbn.shift.weight.normal_()
    x, y = torch.randn(B, 4, 5, 5) * 3 + 2, _labels()
    normed = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
        x.var((0, 2, 3), unbiased=False, keepdim=True) + cbn.bn.eps
    )
    gain, shift = cbn.gain.weight[y][:, :, None, None], cbn.shift.weight[y][:, :, None, None]
    assert_close(cbn(x, y), normed * gain + shift, rtol=1e-4, atol=1e-5)
    assert cbn.bn.weight is None and cbn.bn.bias is None  # the affine part is per class


# --- spectral norm and init -------------------------------------------------------------


def _wrapped(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if parametrize.is_parametrized(m, "weight")]


@pytest.mark.parametrize("arch", ARCHS)
def test_spectral_norm_top_singular_value_is_one(arch):
    """After a few power iterations (one per forward in train mode) every wrapped weight,
    reshaped to (out, -1) as PyTorch defines it, has spectral norm ~1 (Miyato et al. 2018)."""
    d = ARCHS[arch][1](32, 3, WIDTH, spectral_norm=True, num_classes=K)
    x, y = torch.randn(B, 3, 32, 32), _labels()
    for _ in range(20):
        d(x, y)
    d.eval()  # read the weights without another power iteration
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)
    assert _wrapped(d) == [m for m in d.modules() if isinstance(m, layers)]  # every one
    with torch.no_grad():
        sigmas = torch.stack(
            [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2) for m in _wrapped(d)]
        )
    assert_close(sigmas, torch.ones_like(sigmas), rtol=0, atol=0.05)


@pytest.mark.parametrize("arch", ARCHS)
def test_spectral_norm_off_wraps_nothing(arch):
    d = ARCHS[arch][1](32, 3, WIDTH, spectral_norm=False, num_classes=K)
    assert _wrapped(d) == []
    assert _wrapped(ARCHS[arch][0](LATENT, 32, 3, WIDTH, num_classes=K)) == []


def test_dcgan_init():
    """Weights N(0, 0.02), BN gains N(1, 0.02), biases 0 (Radford et al. 2016, sec. 4)."""
    g, d = DCGANGenerator(100, 32, 1, 64), DCGANDiscriminator(32, 1, 64)
    convs = [m for net in (g, d) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    convs += [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.001
    assert abs(weights.mean().item()) < 0.001
    bns = [m for net in (g, d) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    gains = torch.cat([m.weight for m in bns])
    assert abs(gains.mean().item() - 1) < 0.005 and abs(gains.std().item() - 0.02) < 0.005
    biases = [m.bias for m in convs + bns if m.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


# --- norms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "norm, expected", [("batch", True), ("layer", False), ("instance", False), ("none", False)]
)
def test_has_batchnorm(norm, expected):
    assert has_batchnorm(DCGANDiscriminator(32, 1, WIDTH, norm=norm)) is expected
    assert has_batchnorm(DCGANGenerator(LATENT, 32, 1, WIDTH, num_classes=K))
    assert not has_batchnorm(ResNetDiscriminator(32, 1, WIDTH, norm="layer"))


def test_make_norm2d_normalizes_over_the_right_axes():
    x = torch.randn(B, 6, 5, 5) * 4 + 3
    layer, instance = make_norm2d("layer", 6)(x), make_norm2d("instance", 6)(x)
    zeros, ones = torch.zeros(B), torch.ones(B)
    assert_close(layer.mean((1, 2, 3)), zeros, atol=1e-5, rtol=0)  # per sample over C, H, W
    assert_close(layer.var((1, 2, 3), unbiased=False), ones, atol=1e-3, rtol=0)
    assert_close(instance.mean((2, 3)), zeros[:, None].expand(B, 6), atol=1e-5, rtol=0)
    assert layer.mean((2, 3)).abs().max() > 0.01  # layer norm leaves channel means apart
    assert isinstance(make_norm2d("batch", 6), nn.BatchNorm2d)
    assert torch.equal(make_norm2d("none", 6)(x), x)


# --- errors at the boundary -------------------------------------------------------------

BAD_ARGS = [
    (
        lambda: DCGANGenerator(100, image_size=28),
        "DCGANGenerator: image_size must be one of 16, 32, 64, got 28",
    ),
    (lambda: DCGANGenerator(100, channels=2), "DCGANGenerator: channels must be one of 1, 3"),
    (lambda: DCGANDiscriminator(channels=0), "DCGANDiscriminator: channels must be >= 1, got 0"),
    (
        lambda: DCGANDiscriminator(norm="spectral"),
        "DCGANDiscriminator: norm must be one of batch, layer, instance, none, got 'spectral'",
    ),
    (lambda: ResNetGenerator(8, image_size=48), "ResNetGenerator: image_size must be one of"),
    (lambda: ResNetGenerator(8, channels=4), "ResNetGenerator: channels must be one of 1, 3"),
    (
        lambda: ResNetDiscriminator(norm="batch"),
        "ResNetDiscriminator: norm must be one of none, layer, got 'batch'",
    ),
    (lambda: DCGANGenerator(0), "DCGANGenerator: latent_dim must be >= 1, got 0"),
    (lambda: DCGANDiscriminator(num_classes=-1), "num_classes must be >= 0, got -1"),
    (lambda: make_norm2d("group", 4), "norm must be one of batch, layer, instance, none"),
]


@pytest.mark.parametrize("build, message", BAD_ARGS)
def test_bad_constructor_arguments(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


@pytest.mark.parametrize("arch", ARCHS)
def test_wrong_input_shapes(arch):
    g_cls, d_cls = ARCHS[arch]
    g, d = g_cls(100, 32, 1, WIDTH), d_cls(32, 1, WIDTH)
    g_name, d_name = type(g).__name__, type(d).__name__
    with pytest.raises(ValueError, match=re.escape(f"{g_name} expects z (B, 100), got (4, 3)")):
        g(torch.randn(4, 3))
    with pytest.raises(ValueError, match=re.escape(f"{g_name} expects z (B, 100), got (100,)")):
        g(torch.randn(100))
    message = f"{d_name} expects images (B, 1, 32, 32), got (4, 3, 32, 32)"
    with pytest.raises(ValueError, match=re.escape(message)):
        d(torch.randn(4, 3, 32, 32))


LABEL_ERRORS = [
    (None, "is conditional (num_classes=3) and needs labels y of shape (B,)"),
    (torch.tensor([0, 1, 3, 0]), "expects labels y in [0, 3)"),  # a RuntimeError: see below
    (torch.tensor([0, -1, 2, 0]), "expects labels y in [0, 3)"),
    (torch.zeros(4), "expects labels y (4,) of dtype int64, got (4,) of dtype torch.float32"),
    (torch.zeros(4, 1, dtype=torch.long), "expects labels y (4,) of dtype int64, got (4, 1)"),
    (torch.zeros(3, dtype=torch.long), "expects labels y (4,) of dtype int64, got (3,)"),
]


@pytest.mark.parametrize("y, message", LABEL_ERRORS)
@pytest.mark.parametrize("arch", ARCHS)
def test_bad_labels(arch, y, message):
    g_cls, d_cls = ARCHS[arch]
    g, d = g_cls(LATENT, 16, 1, WIDTH, num_classes=K), d_cls(16, 1, WIDTH, num_classes=K)
    # label values are checked on the device (no host sync in a training step): RuntimeError
    error = RuntimeError if "in [0, 3)" in message else ValueError
    with pytest.raises(error, match=re.escape(f"{type(g).__name__} {message}")):
        g(torch.randn(B, LATENT), y)
    with pytest.raises(error, match=re.escape(message)):
        d(torch.randn(B, 1, 16, 16), y)


@pytest.mark.parametrize("arch", ARCHS)
def test_labels_given_to_an_unconditional_net(arch):
    g_cls, d_cls = ARCHS[arch]
    g, d = g_cls(LATENT, 16, 1, WIDTH), d_cls(16, 1, WIDTH)
    message = "is unconditional (num_classes=0) but got labels y; pass None"
    with pytest.raises(ValueError, match=re.escape(f"{type(g).__name__} {message}")):
        g(torch.randn(B, LATENT), _labels())
    with pytest.raises(ValueError, match=re.escape(f"{type(d).__name__} {message}")):
        d(torch.randn(B, 1, 16, 16), _labels())


def test_check_labels_accepts_int32_and_empty_batches():
    check_labels(torch.tensor([0, 2], dtype=torch.int32), 2, K, "net")
    check_labels(torch.zeros(0, dtype=torch.long), 0, K, "net")


# --- gradient penalty and mixed precision -----------------------------------------------

CRITICS = [
    (DCGANDiscriminator, {"norm": "layer"}),
    (DCGANDiscriminator, {"norm": "none", "spectral_norm": True}),
    (ResNetDiscriminator, {"norm": "layer", "spectral_norm": False}),
    (ResNetDiscriminator, {"norm": "none", "spectral_norm": True}),
]
CRITIC_IDS = ["dcgan-layer", "dcgan-sn", "resnet-layer", "resnet-sn"]


@pytest.mark.parametrize("d_cls, kwargs", CRITICS, ids=CRITIC_IDS)
def test_gradient_penalty_double_backward(d_cls, kwargs):
    """The penalty's backward (through ∇_x D) reaches every weight, in train mode."""
    d = d_cls(16, 3, WIDTH, **kwargs)
    _gradient_penalty(d, torch.randn(B, 3, 16, 16)).backward()
    weights = {n: p for n, p in d.named_parameters() if p.dim() >= 2}
    assert weights
    for name, p in weights.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize("d_cls, kwargs", CRITICS, ids=CRITIC_IDS)
def test_gradient_penalty_gradient_matches_finite_differences(d_cls, kwargs):
    """d GP / d theta along a random direction equals a central difference (float64, eval
    mode so that spectral norm's power iteration holds still)."""
    d = d_cls(16, 3, WIDTH, **kwargs).double().eval()
    x = torch.randn(B, 3, 16, 16, dtype=torch.float64)
    params = list(d.parameters())
    grads = torch.autograd.grad(_gradient_penalty(d, x), params, allow_unused=True)
    direction = [torch.randn_like(p) for p in params]
    slope = sum((g * v).sum() for g, v in zip(grads, direction, strict=True) if g is not None)
    eps = 1e-6
    _step(params, direction, eps)
    plus = _gradient_penalty(d, x).detach()
    _step(params, direction, -2 * eps)
    minus = _gradient_penalty(d, x).detach()
    assert_close(slope, (plus - minus) / (2 * eps), rtol=1e-4, atol=1e-6)


def _step(params: list[torch.Tensor], direction: list[torch.Tensor], size: float) -> None:
    with torch.no_grad():
        for p, v in zip(params, direction, strict=True):
            p.add_(size * v)


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_autocast_forward(arch):
    g_cls, d_cls = ARCHS[arch]
    g = g_cls(LATENT, 16, 3, WIDTH, num_classes=K).eval()
    d = d_cls(16, 3, WIDTH, num_classes=K, spectral_norm=True).eval()
    z, y = torch.randn(B, LATENT), _labels()
    with torch.no_grad():
        x, out = g(z, y), d(g(z, y), y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x_bf16, out_bf16 = g(z, y), d(x, y)
    assert x_bf16.dtype == torch.bfloat16  # autocast was on
    assert torch.isfinite(x_bf16).all() and torch.isfinite(out_bf16).all()
    assert (x_bf16.float() - x).abs().max() <= 0.1
    assert (out_bf16.float() - out).abs().max() <= 0.1 * out.abs().max()
