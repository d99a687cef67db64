"""GAN families: each owns its networks and declares its training phases."""

from ganlab.families.base import Family, Phase, StepContext
from ganlab.families.latent import LatentGAN

__all__ = ["Family", "LatentGAN", "Phase", "StepContext"]
