"""DCGAN (Radford, Metz & Chintala 2015, arXiv:1511.06434) for even image sizes >= 8."""

import torch
from torch import nn

from ganarena.errors import ConfigError
from ganarena.models.mlp import check_norm, check_positive_int

_NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN init in place: conv/linear weights N(0, std), norm weights N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, _NORM_LAYERS) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, std)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


def dcgan_layout(image_size: int) -> tuple[int, int]:
    """Return (s0, n_up): image_size halved n_up times (while even and > 4) down to s0."""
    check_positive_int("image_size", image_size)
    size, n_up = image_size, 0
    while size % 2 == 0 and size > 4:
        size //= 2
        n_up += 1
    if image_size < 8 or n_up == 0:
        raise ConfigError(
            f"DCGAN needs an image_size of at least 8 that can be halved at least once "
            f"(e.g. 28, 32, 64), got {image_size}. Resize the data (dataset.image_size) "
            "or use model=mlp, which takes any size."
        )
    return size, n_up


def _d_norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)  # one group = layer norm over (C, H, W)
    return nn.Identity()


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> ConvT to s0 x s0 -> n_up ConvT(4, 2, 1) doublings -> Tanh image."""

    def __init__(
        self, latent_dim: int = 100, image_size: int = 28, channels: int = 1, width: int = 64
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        width = check_positive_int("width", width)
        s0, n_up = dcgan_layout(image_size)
        ch = width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, s0, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> n_up Conv(4, 2, 1) halvings with LeakyReLU -> Conv(k=s0) to 1x1 -> logits (B,).

    `norm` ("batch", "layer" = GroupNorm(1, C), "none") applies to every halving but the first.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        norm: str | None = "batch",
        negative_slope: float = 0.2,
    ):
        super().__init__()
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        width = check_positive_int("width", width)
        norm = check_norm(norm)
        s0, n_up = dcgan_layout(image_size)
        ch = width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ch, 4, 2, 1),
            nn.LeakyReLU(negative_slope),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"),
                _d_norm(norm, ch * 2),
                nn.LeakyReLU(negative_slope),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, s0, 1, 0))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0])
