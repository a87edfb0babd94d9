"""DCGAN (Radford, Metz & Chintala 2015, arXiv:1511.06434) for even image sizes >= 8.

Conditional variant (with `num_classes`): the generator takes a learned label embedding concatenated
to z, the discriminator a projection head (Miyato & Koyama 2018, arXiv:1802.05637).
"""

from itertools import islice

import torch
from torch import nn

from ganarena.errors import ConfigError, check_int
from ganarena.models.checks import (
    apply_spectral_norm,
    check_labels,
    check_norm,
    check_num_classes,
    check_positive_int,
)
from ganarena.models.stylegan2 import MinibatchStdLayer
from ganarena.run.defaults import example

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


def dcgan_layout(image_size: int, model: str = "DCGAN needs") -> tuple[int, int]:
    """Return (s0, n_up): image_size halved n_up times (while even and > 4) down to s0.
    `model` opens the refusal of a size that cannot be halved (R3GAN's networks use it too)."""
    check_positive_int("image_size", image_size)
    size, n_up = image_size, 0
    while size % 2 == 0 and size > 4:
        size //= 2
        n_up += 1
    if image_size < 8 or n_up == 0:
        raise ConfigError(
            f"{model} an image_size of at least 8 that can be halved at least once "
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
    """z (B, latent_dim) -> ConvT to s0 x s0 -> n_up ConvT(4, 2, 1) doublings -> Tanh image.

    With `num_classes`, a learned embedding of y (`embed_dim`, default num_classes) is
    concatenated to z. Conditional batch norm (per-class gains and biases, as in Miyato & Koyama
    2018) was measured too and learned the classes far more slowly: on the MNIST test split, width
    32, 1,000 steps, a held-out classifier recognised the intended class in 11% of samples with
    conditional BN, 32% with both, 43% with the concatenation kept here. Its gains start at 1 and
    move at the learning rate, so the label barely acts early on; the embedding acts from step 0.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        num_classes: int | None = None,
        embed_dim: int | None = None,
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        width = check_positive_int("width", width)
        s0, n_up = dcgan_layout(image_size)
        fan_in = self.latent_dim
        if self.num_classes is not None:
            embed_dim = self.num_classes if embed_dim is None else embed_dim
            self.embed = nn.Embedding(self.num_classes, check_positive_int("embed_dim", embed_dim))
            fan_in += embed_dim
        ch = width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(fan_in, ch, s0, 1, 0, bias=False),
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

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("DCGANGenerator", self.num_classes, y, z.shape[0])
        if y is not None:
            z = torch.cat([z.view(z.shape[0], self.latent_dim), self.embed(y).to(z.dtype)], dim=1)
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image -> n_up Conv(4, 2, 1) halvings with LeakyReLU -> Conv(k=s0) to 1x1 -> logits (B,).

    `norm` ("batch", "layer" = GroupNorm(1, C), "none") applies to every halving but the first.
    With `num_classes`, a projection head (Miyato & Koyama 2018) adds <embed(y), h> to the logit,
    h being the penultimate feature map summed over space (their global sum pooling); the final
    conv plays psi, the unconditional term. `spectral_norm` normalises every conv (and the
    projection embedding). `mbstd` > 0 appends ProGAN's minibatch-stddev feature map (Karras et
    al. 2018, sec. 3: the stddev of each feature over groups of `mbstd` samples, averaged) to the
    penultimate map before the final conv, so D can see how varied a batch is.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        width: int = 64,
        norm: str | None = "batch",
        negative_slope: float = 0.2,
        num_classes: int | None = None,
        spectral_norm: bool = False,
        mbstd: int = 0,
    ):
        super().__init__()
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        width = check_positive_int("width", width)
        norm = check_norm(norm)
        mbstd = check_int(
            "Model setting `mbstd`", mbstd, 0,
            f"Set the group size, e.g. model.mbstd={example('model.mbstd', 0, 'dcgan')} (the "
            "default: off; 4 is StyleGAN's group size).",
        )  # fmt: skip
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
        layers.append(nn.Conv2d(ch + (1 if mbstd else 0), 1, s0, 1, 0))
        self.net = nn.Sequential(*layers)
        # between features() and the final conv; parameter-free, so state dicts are unchanged
        self.mbstd = MinibatchStdLayer(mbstd, 1) if mbstd else nn.Identity()
        init_weights(self)
        if self.num_classes is not None:
            self.embed = nn.Embedding(self.num_classes, ch)
            nn.init.xavier_uniform_(self.embed.weight)  # as in Miyato's reference code
        if spectral_norm:  # after init: the parametrization wraps the initialised weights
            apply_spectral_norm(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate feature map (B, C, s0, s0): everything but the final conv (and the
        minibatch-stddev map)."""
        for m in islice(self.net, len(self.net) - 1):
            x = m(x)
        return x

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("DCGANDiscriminator", self.num_classes, y, x.shape[0])
        h = self.features(x)
        out = self.net[-1](self.mbstd(h)).view(x.shape[0])
        if y is None:
            return out
        pooled = h.sum(dim=(2, 3))
        return out + (self.embed(y).to(pooled.dtype) * pooled).sum(dim=1)
