"""Generators and discriminators: plain nn.Modules built from conf/model/*.yaml.

Every generator is called as G(z) or, when built with `num_classes`, G(z, y); every
discriminator as D(x) or D(x, y), with y int64 labels of shape (B,). The CycleGAN translators
(resnet_translator.py) map images to images: G(x) -> image, D(x) -> patch logits (B, 1, h, w).
"""

from ganarena.models.checks import apply_spectral_norm
from ganarena.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights
from ganarena.models.mlp import MLPDiscriminator, MLPGenerator
from ganarena.models.pacgan import (
    MaxoutDiscriminator,
    PacGAN2DGenerator,
    PacGANDCGANDiscriminator,
    PacGANDCGANGenerator,
)
from ganarena.models.r3gan import R3GANDiscriminator, R3GANGenerator
from ganarena.models.resnet_translator import (
    PatchDiscriminator,
    ResnetGenerator,
    patch_output_size,
    patch_receptive_field,
)
from ganarena.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from ganarena.models.unrolled_gan import UnrolledGANDiscriminator, UnrolledGANGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "MaxoutDiscriminator",
    "PacGAN2DGenerator",
    "PacGANDCGANDiscriminator",
    "PacGANDCGANGenerator",
    "R3GANDiscriminator",
    "R3GANGenerator",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "UnrolledGANDiscriminator",
    "UnrolledGANGenerator",
    "apply_spectral_norm",
    "init_weights",
    "patch_output_size",
    "patch_receptive_field",
]
