"""Fully-connected GAN of the classic PyTorch/Keras tutorials (Goodfellow et al. 2014 style).

Conditional variant (Mirza & Osindero 2014, arXiv:1411.1784): with `num_classes` set, a learned
label embedding is concatenated to z (G) and to the flattened image (D).
"""

from collections.abc import Sequence

import torch
from torch import nn

from ganarena.models.checks import (
    apply_spectral_norm,
    check_hidden,
    check_labels,
    check_norm,
    check_num_classes,
    check_positive_int,
)


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> Linear-ReLU per hidden width -> Linear-Tanh -> image (B, C, H, W).

    With `num_classes`, a learned embedding of y (`embed_dim`, default num_classes) is
    concatenated to z.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        hidden: Sequence[int] = (256, 512),
        image_size: int = 28,
        channels: int = 1,
        num_classes: int | None = None,
        embed_dim: int | None = None,
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        fan_in = self.latent_dim
        if self.num_classes is not None:
            embed_dim = self.num_classes if embed_dim is None else embed_dim
            self.embed = nn.Embedding(self.num_classes, check_positive_int("embed_dim", embed_dim))
            fan_in += embed_dim
        widths = (fan_in, *check_hidden("hidden", hidden))
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers += [nn.Linear(widths[-1], channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("MLPGenerator", self.num_classes, y, z.shape[0])
        if y is not None:
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """image (B, C, H, W) -> flatten -> Linear-LeakyReLU per hidden width -> Linear -> logits (B,).

    `norm` is validated and ignored: it exists so every discriminator config can pass it.
    With `num_classes`, a learned embedding of y (`embed_dim`, default num_classes) is
    concatenated to the flattened image. `spectral_norm` normalises every Linear layer.
    """

    ignores_norm = True  # declared for the config checks: no normalisation layer, whatever `norm`

    def __init__(
        self,
        hidden: Sequence[int] = (512, 256),
        image_size: int = 28,
        channels: int = 1,
        negative_slope: float = 0.2,
        norm: str | None = None,
        num_classes: int | None = None,
        embed_dim: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        check_norm(norm)
        fan_in = channels * image_size * image_size
        if self.num_classes is not None:
            embed_dim = self.num_classes if embed_dim is None else embed_dim
            self.embed = nn.Embedding(self.num_classes, check_positive_int("embed_dim", embed_dim))
            fan_in += embed_dim
        widths = (fan_in, *check_hidden("hidden", hidden))
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)
        if spectral_norm:
            # The embedding here is an input, not a weight acting on x: normalising it would not
            # bound D's Lipschitz constant in x, so only the Linear layers are normalised.
            apply_spectral_norm(self.net)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("MLPDiscriminator", self.num_classes, y, x.shape[0])
        if y is not None:
            x = torch.cat([x.flatten(1), self.embed(y).to(x.dtype)], dim=1)
        return self.net(x).view(x.shape[0])
