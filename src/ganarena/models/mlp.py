"""Fully-connected GAN of the classic PyTorch/Keras tutorials (Goodfellow et al. 2014 style)."""

from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn

from ganarena.errors import ConfigError

NORMS = (None, "none", "batch", "layer")


def check_positive_int(name: str, value) -> int:
    """Return `value` if it is a positive int, else raise ConfigError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ConfigError(
            f"Model setting `{name}` must be a positive integer, got {value!r}. "
            "Set it to a whole number >= 1 in the model config (conf/model/*.yaml)."
        )
    return int(value)


def check_hidden(name: str, hidden) -> tuple[int, ...]:
    """Return `hidden` as a tuple of positive ints, else raise ConfigError."""
    if isinstance(hidden, str) or not isinstance(hidden, Sequence):
        raise ConfigError(
            f"Model setting `{name}` must be a list of layer widths such as [256, 512], "
            f"got {hidden!r}. Give it as a YAML list in the model config."
        )
    return tuple(check_positive_int(f"{name}[{i}]", h) for i, h in enumerate(hidden))


def check_norm(norm) -> str:
    """Return the discriminator norm name ("batch", "layer" or "none"), else raise ConfigError."""
    if norm not in NORMS:
        raise ConfigError(
            f"Discriminator `norm` must be one of 'batch', 'layer' or 'none', got {norm!r}. "
            "It normally comes from the loss config (`loss.d_norm`); fix the value there."
        )
    return "none" if norm is None else norm


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> Linear-ReLU per hidden width -> Linear-Tanh -> image (B, C, H, W)."""

    def __init__(
        self,
        latent_dim: int = 100,
        hidden: Sequence[int] = (256, 512),
        image_size: int = 28,
        channels: int = 1,
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        widths = (self.latent_dim, *check_hidden("hidden", hidden))
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers += [nn.Linear(widths[-1], channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """image (B, C, H, W) -> flatten -> Linear-LeakyReLU per hidden width -> Linear -> logits (B,).

    `norm` is validated and ignored: it exists so every discriminator config can pass it.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (512, 256),
        image_size: int = 28,
        channels: int = 1,
        negative_slope: float = 0.2,
        norm: str | None = None,
    ):
        super().__init__()
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        check_norm(norm)
        widths = (channels * image_size * image_size, *check_hidden("hidden", hidden))
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(widths[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0])
