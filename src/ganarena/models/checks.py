"""The argument checks every model uses (one clear ConfigError per bad value) and spectral
normalisation: shared building blocks of models/, not part of any one network."""

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
