"""The networks of PacGAN's mode-collapse experiments (Lin, Khetan, Fanti & Oh 2018, "PacGAN: The
power of two samples in generative adversarial networks", arXiv:1712.04086), as its code builds
them (github.com/fjxmlzn/PacGAN):

- the 2-D ring/grid nets of Table 1 (synthetic_data_experiments, after VEEGAN's setting):
  `PacGAN2DGenerator`, four fully connected layers of 400 ReLU units with batch norm on a 2-D
  Gaussian latent and a linear output (no Tanh: the points are not bounded), and
  `MaxoutDiscriminator`, three maxout layers of 200 units with 5 pieces and a linear logit;
- the Stacked MNIST DCGAN of Table 2 (stacked_MNIST_experiments/VEEGAN_experiment, Taehoon Kim's
  DCGAN-tensorflow at 28 px): `PacGANDCGANGenerator` and `PacGANDCGANDiscriminator`, 5x5
  stride-2 (transposed) convolutions with TensorFlow's "same" output sizes (28, 14, 7, 4, 2).

Unconditional, as in the paper; weights N(0, 0.02), biases 0, batch-norm scales 1. The
discriminators take `channels` so PacGAN packing (ganarena.gan.packing) builds them for m x the
data's channels. Table 3's small-discriminator nets are in ganarena.models.unrolled_gan.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganarena.errors import ConfigError
from ganarena.models.checks import check_positive_int

__all__ = [
    "MaxoutDiscriminator",
    "PacGAN2DGenerator",
    "PacGANDCGANDiscriminator",
    "PacGANDCGANGenerator",
    "paper_init",
]


def paper_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """In place: conv/linear weights N(0, std) and biases 0 (PacGAN's IsotropicGaussian(0.02) and
    Constant(0); DCGAN-tensorflow's N(0, 0.02)), batch-norm scales 1 and shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def _unconditional(name: str, num_classes) -> None:
    if num_classes is not None:
        raise ConfigError(
            f"{name} is PacGAN's unconditional network, but got num_classes={num_classes!r}. "
            "Train it unconditionally (model.conditional=false), or use model=mlp / model=dcgan "
            "for a class-conditional GAN."
        )


class PacGAN2DGenerator(nn.Module):
    """z (B, latent_dim) -> `layers` x [Linear (no bias), BatchNorm, ReLU] of `hidden` units ->
    Linear -> points (B, channels, image_size, image_size) (2-D points: channels 2, size 1)."""

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: int = 400,
        layers: int = 4,
        image_size: int = 1,
        channels: int = 2,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("PacGAN2DGenerator", num_classes)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.num_classes = None
        self.shape = (check_positive_int("channels", channels), image_size, image_size)
        width, depth = check_positive_int("hidden", hidden), check_positive_int("layers", layers)
        blocks: list[nn.Module] = []
        for i in range(depth):  # blocks' MLP(use_bias=False): batch norm provides the shift
            blocks += [
                nn.Linear(latent_dim if i == 0 else width, width, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
        blocks.append(nn.Linear(width, math.prod(self.shape)))  # linear output (Identity)
        self.net = nn.Sequential(*blocks)
        paper_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class Maxout(nn.Module):
    """Linear to units x pieces, then the maximum over the pieces (Goodfellow et al. 2013)."""

    def __init__(self, inputs: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(inputs, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)


class MaxoutDiscriminator(nn.Module):
    """x (B, C, H, W), flattened -> `layers` maxout layers of `hidden` units with `pieces`
    pieces -> Linear -> logits (B,). No normalisation, no dropout (PacGAN's 2-D D)."""

    def __init__(
        self,
        image_size: int = 1,
        channels: int = 2,
        hidden: int = 200,
        pieces: int = 5,
        layers: int = 3,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("MaxoutDiscriminator", num_classes)
        self.num_classes = None
        width, depth = check_positive_int("hidden", hidden), check_positive_int("layers", layers)
        pieces = check_positive_int("pieces", pieces)
        inputs = check_positive_int("channels", channels) * image_size**2
        self.net = nn.Sequential(
            *(Maxout(inputs if i == 0 else width, width, pieces) for i in range(depth)),
            nn.Linear(width, 1),
        )
        paper_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).view(x.shape[0])


def same_sizes(image_size: int, halvings: int) -> list[int]:
    """TensorFlow "same" sizes of stride-2 layers: image_size, ceil(/2), ... (28: 28, 14, 7, 4, 2)."""
    sizes = [image_size]
    for _ in range(halvings):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def _check_size(name: str, image_size: int, halvings: int) -> list[int]:
    check_positive_int("image_size", image_size)
    sizes = same_sizes(image_size, halvings)
    if sizes[-1] < 2:
        raise ConfigError(
            f"{name} halves the image {halvings} times (TensorFlow 'same' sizes), so it needs "
            f"dataset.image_size >= {2 ** (halvings - 1) + 1}; got {image_size}. PacGAN uses 28."
        )
    return sizes


class PacGANDCGANGenerator(nn.Module):
    """z (B, 100) -> Linear to 8w x s16 x s16, BN, ReLU -> three ConvTranspose(5, 2) with BN+ReLU
    (4w, 2w, w channels) -> ConvTranspose(5, 2) to `channels` -> Tanh; sizes s16 -> s8 -> s4 ->
    s2 -> s, TensorFlow "same" (28: 2, 4, 7, 14, 28)."""

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 28,
        channels: int = 3,
        width: int = 64,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("PacGANDCGANGenerator", num_classes)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.num_classes = None
        w = check_positive_int("width", width)
        sizes = _check_size("PacGANDCGANGenerator", image_size, 4)[::-1]  # 2, 4, 7, 14, 28
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 8 * w * sizes[0] ** 2),
            nn.Unflatten(1, (8 * w, sizes[0], sizes[0])),
        )
        chans = [8 * w, 4 * w, 2 * w, w, check_positive_int("channels", channels)]
        layers: list[nn.Module] = [nn.BatchNorm2d(8 * w), nn.ReLU()]
        for i in range(4):
            extra = sizes[i + 1] - (2 * sizes[i] - 1)  # k5 s2 p2: 2n - 1 (+ output_padding)
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 5, 2, 2, output_padding=extra))
            layers += [nn.BatchNorm2d(chans[i + 1]), nn.ReLU()] if i < 3 else [nn.Tanh()]
        self.net = nn.Sequential(*layers)
        paper_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.project(z))


class PacGANDCGANDiscriminator(nn.Module):
    """x (B, C, s, s) -> Conv(5, 2) to w, LeakyReLU(0.2) -> three Conv(5, 2) with BN+LeakyReLU
    (2w, 4w, 8w) -> Linear -> logits (B,); sizes s -> s/2 -> s/4 -> s/8 -> s/16 ("same")."""

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 3,
        width: int = 64,
        negative_slope: float = 0.2,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("PacGANDCGANDiscriminator", num_classes)
        self.num_classes = None
        w = check_positive_int("width", width)
        sizes = _check_size("PacGANDCGANDiscriminator", image_size, 4)
        chans = [check_positive_int("channels", channels), w, 2 * w, 4 * w, 8 * w]
        layers: list[nn.Module] = []
        for i in range(4):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 5, 2, 2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(chans[i + 1]))
            layers.append(nn.LeakyReLU(negative_slope))
        layers += [nn.Flatten(), nn.Linear(8 * w * sizes[-1] ** 2, 1)]
        self.net = nn.Sequential(*layers)
        paper_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(x.shape[0])
