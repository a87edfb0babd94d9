"""Fully-connected GAN of the classic PyTorch/Keras tutorials (Goodfellow et al. 2014 style).

Conditional variant (Mirza & Osindero 2014, arXiv:1411.1784): with `num_classes` set, a learned
label embedding is concatenated to z (G) and to the flattened image (D).
"""

from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganarena.errors import ConfigError, check_int

NORMS = (None, "none", "batch", "layer")


def check_positive_int(name: str, value) -> int:
    """Return `value` if it is a positive int, else raise ConfigError naming `name`."""
    fix = "Set it to a whole number >= 1 in the model config (conf/model/*.yaml)."
    return check_int(f"Model setting `{name}`", value, 1, fix)


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
            "It comes from the model config (`model.d_norm`); fix the value there."
        )
    return "none" if norm is None else norm


def check_num_classes(num_classes) -> int | None:
    """Return None (unconditional) or a class count >= 2, else raise ConfigError."""
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 2:
        raise ConfigError(
            f"Model setting `num_classes` must be null (unconditional) or an integer >= 2, got "
            f"{num_classes!r}. It is filled from the dataset when model.conditional=true; "
            "do not set it by hand."
        )
    return int(num_classes)


def check_labels(
    name: str, num_classes: int | None, y: torch.Tensor | None, batch: int
) -> torch.Tensor | None:
    """Validate the labels passed to a network's forward; raise ValueError on misuse."""
    if num_classes is None:
        if y is not None:
            raise ValueError(
                f"{name} is unconditional (num_classes=None) but was given labels; "
                "call it without y, or build it with num_classes for a conditional model."
            )
        return None
    if y is None:
        raise ValueError(
            f"{name} is conditional ({num_classes} classes): pass int64 labels y of shape "
            f"({batch},) as forward(..., y)."
        )
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != (batch,):
        desc = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"{name}: labels y must be an int64 tensor of shape ({batch},), got {desc}."
        )
    # Range check only where it costs no device sync; an embedding lookup fails anyway.
    if y.device.type == "cpu" and batch and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"{name}: labels must lie in [0, {num_classes - 1}], got values in "
            f"[{int(y.min())}, {int(y.max())}]."
        )
    return y


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every Conv/Linear/Embedding in `module`.

    Uses torch.nn.utils.parametrizations.spectral_norm (one power iteration per training forward).
    """
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            _spectral_norm(m)
    return module


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
