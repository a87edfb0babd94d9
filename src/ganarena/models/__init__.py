"""Generators and discriminators: plain nn.Modules built from conf/model/*.yaml."""

from ganarena.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights
from ganarena.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "init_weights",
]
