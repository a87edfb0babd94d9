"""The Stacked MNIST networks of Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017, "Unrolled
Generative Adversarial Networks", arXiv:1611.02163, appendix E), with the small discriminators
PacGAN's Table 3 trains them with (Lin et al. 2018; github.com/fjxmlzn/PacGAN,
stacked_MNIST_experiments/unrolled_GAN_experiment/D=0.25G and D=0.5G):

- `UnrolledGANGenerator`: z (256) -> Linear to 64 x 4 x 4, BN, ReLU -> ConvTranspose(3, 2) to
  32 x 7 x 7, 16 x 14 x 14, 8 x 28 x 28 (each BN, ReLU) -> Conv(3, 1) to 3 channels -> Tanh;
- `UnrolledGANDiscriminator`: three Conv(3, 2) of `width`, 2 x width, 4 x width channels, each
  with batch norm and LeakyReLU(0.3), to 4 x 4 -> Linear -> logits. width 2 (2/4/8 channels) is
  "D = 1/4 G", width 4 (4/8/16) "D = 1/2 G".

28-px images only, as in the papers; weights N(0, 0.02) (ganarena.models.pacgan.paper_init).
"""

from __future__ import annotations

import torch
from torch import nn

from ganarena.errors import ConfigError
from ganarena.models.checks import check_positive_int
from ganarena.models.pacgan import _unconditional, paper_init

__all__ = ["UnrolledGANDiscriminator", "UnrolledGANGenerator"]


def _check_28(name: str, image_size) -> None:
    if image_size != 28:
        raise ConfigError(
            f"{name} is Unrolled GAN's Stacked MNIST network, built for 28 x 28 images "
            f"(4 -> 7 -> 14 -> 28); got dataset.image_size={image_size!r}. Use 28, or model=dcgan "
            "for other sizes."
        )


class UnrolledGANGenerator(nn.Module):
    """z (B, 256) -> 64 x 4 x 4 -> 32 x 7 x 7 -> 16 x 14 x 14 -> 8 x 28 x 28 -> `channels`, Tanh."""

    def __init__(
        self,
        latent_dim: int = 256,
        image_size: int = 28,
        channels: int = 3,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("UnrolledGANGenerator", num_classes)
        _check_28("UnrolledGANGenerator", image_size)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.num_classes = None
        out = check_positive_int("channels", channels)
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, 64 * 4 * 4),
            nn.Unflatten(1, (64, 4, 4)),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        ]
        for c_in, c_out, extra in ((64, 32, 0), (32, 16, 1), (16, 8, 1)):  # 4 -> 7 -> 14 -> 28
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=extra),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        layers += [nn.Conv2d(8, out, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        paper_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class UnrolledGANDiscriminator(nn.Module):
    """x (B, C, 28, 28) -> Conv(3, 2) to width x 14 x 14, 2 width x 7 x 7, 4 width x 4 x 4 (each
    BN, LeakyReLU(0.3)) -> Linear -> logits (B,)."""

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 3,
        width: int = 2,
        negative_slope: float = 0.3,
        num_classes: int | None = None,
    ):
        super().__init__()
        _unconditional("UnrolledGANDiscriminator", num_classes)
        _check_28("UnrolledGANDiscriminator", image_size)
        self.num_classes = None
        w = check_positive_int("width", width)
        chans = [check_positive_int("channels", channels), w, 2 * w, 4 * w]
        layers: list[nn.Module] = []
        for i in range(3):  # 28 -> 14 -> 7 -> 4
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.LeakyReLU(negative_slope),
            ]
        layers += [nn.Flatten(), nn.Linear(4 * w * 4 * 4, 1)]
        self.net = nn.Sequential(*layers)
        paper_init(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).view(x.shape[0])
