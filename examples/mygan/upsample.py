"""A generator that upsamples by nearest neighbour, then convolves: no checkerboard
artefacts of transposed convolutions (Odena et al. 2016)."""

import math

from torch import nn


class UpsampleGenerator(nn.Sequential):
    """z (B, latent_dim) -> images (B, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, latent_dim, image_size=16, channels=1, width=32):
        layers, c = [nn.Unflatten(1, (latent_dim, 1, 1)), nn.Upsample(scale_factor=4)], latent_dim
        for _ in range(int(math.log2(image_size)) - 2):  # 4 px -> image_size
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            layers.append(nn.Upsample(scale_factor=2))
            c = width
        super().__init__(*layers, nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())
