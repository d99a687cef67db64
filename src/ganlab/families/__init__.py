"""GAN families: each owns its networks and declares its training phases."""

from ganlab.families.base import DStep, Family, Phase, StepContext
from ganlab.families.cyclegan import CycleGAN
from ganlab.families.latent import LatentGAN
from ganlab.families.pix2pix import Pix2Pix
from ganlab.families.protocols import CanCritic, CanSample, CanTranslate
from ganlab.families.unrolled import UnrolledGAN

__all__ = [
    "CanCritic",
    "CanSample",
    "CanTranslate",
    "CycleGAN",
    "DStep",
    "Family",
    "LatentGAN",
    "Phase",
    "Pix2Pix",
    "StepContext",
    "UnrolledGAN",
]
