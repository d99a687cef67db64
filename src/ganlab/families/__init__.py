"""GAN families: each owns its networks and declares its training phases."""

from ganlab.families.base import Family, Phase, StepContext
from ganlab.families.cyclegan import CycleGAN
from ganlab.families.latent import LatentGAN
from ganlab.families.pix2pix import Pix2Pix
from ganlab.families.unrolled import UnrolledGAN

__all__ = ["CycleGAN", "Family", "LatentGAN", "Phase", "Pix2Pix", "StepContext", "UnrolledGAN"]
