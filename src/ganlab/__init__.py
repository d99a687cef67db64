"""ganlab: a GAN experiment lab on Lightning + Hydra."""

__version__ = "0.1.0"
