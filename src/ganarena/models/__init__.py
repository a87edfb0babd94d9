"""Generators and discriminators: plain nn.Modules built from conf/model/*.yaml.

Every generator is called as G(z) or, when built with `num_classes`, G(z, y); every
discriminator as D(x) or D(x, y), with y int64 labels of shape (B,).
"""

from ganarena.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights
from ganarena.models.mlp import MLPDiscriminator, MLPGenerator, apply_spectral_norm

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "apply_spectral_norm",
    "init_weights",
]
