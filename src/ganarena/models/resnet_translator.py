"""CycleGAN's image-to-image networks (Zhu, Park, Isola & Efros 2017, arXiv:1703.10593), built as in
the reference code, junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py`:

- `ResnetGenerator`: Johnson et al. 2016's residual translator (reference `ResnetGenerator` and
  `ResnetBlock`, padding_type="reflect").
- `PatchDiscriminator`: the PatchGAN (Isola et al. 2017, pix2pix), reference `NLayerDiscriminator`:
  one logit per overlapping input patch of `patch_receptive_field(n_layers)` pixels.

Norms as the reference's `get_norm_layer`: "instance" = InstanceNorm2d(affine=False,
track_running_stats=False), "batch" = BatchNorm2d(affine=True), "none" = identity; plus "layer" =
GroupNorm(1, C) (not in the reference; for per-sample penalties that rule out batch norm). Weights are
initialised as the reference's init_type="normal", init_gain=0.02: conv weights N(0, 0.02), biases 0,
batch-norm gains N(1, 0.02) (`ganarena.models.dcgan.init_weights` does exactly that; instance norm
without affine has no parameters).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganarena.errors import ConfigError
from ganarena.models.checks import apply_spectral_norm, check_positive_int
from ganarena.models.dcgan import init_weights

TRANSLATOR_NORMS = ("instance", "batch", "layer", "none")


def _check_norm(norm) -> str:
    if norm not in TRANSLATOR_NORMS:
        raise ConfigError(
            f"CycleGAN network `norm` must be one of 'instance', 'batch', 'layer' or 'none', got "
            f"{norm!r}. The reference trains CycleGAN with 'instance'; fix it in "
            "conf/model/resnet.yaml (model.d_norm for the discriminator)."
        )
    return norm


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "layer":  # not in the reference: GroupNorm(1, C) as in ganarena's DCGAN critic
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _check_nonneg_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"Model setting `{name}` must be an integer >= 0, got {value!r}. "
            "Fix it in the model config (conf/model/resnet.yaml) or on the command line."
        )
    return value


def check_translator_size(image_size: int, n_down: int) -> int:
    """ConfigError unless `image_size` survives `n_down` exact halvings (else the output size
    differs from the input and the cycle/identity losses cannot compare them)."""
    check_positive_int("image_size", image_size)
    if image_size % 2**n_down:
        ok = [s for s in (28, 32, 64, 128, 256) if s % 2**n_down == 0]
        raise ConfigError(
            f"ResnetGenerator with n_down={n_down} halves the image {n_down} times and doubles it "
            f"back, so the image size must be divisible by 2**{n_down} = {2**n_down}; got "
            f"{image_size}. Resize the data (dataset.image_size, e.g. one of {ok}) or lower "
            "model.generator.n_down."
        )
    return image_size


class ResnetBlock(nn.Module):
    """x + [reflect-pad 1, conv 3x3, norm, ReLU, (dropout 0.5), reflect-pad 1, conv 3x3, norm](x)."""

    def __init__(self, channels: int, norm: str, dropout: bool, bias: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, padding=0, bias=bias),
            _norm(norm, channels),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, padding=0, bias=bias),
            _norm(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Image (B, in_channels, H, W) in [-1, 1] -> image (B, out_channels, H, W) in [-1, 1].

    reflect-pad 3, conv 7x7 (width), norm, ReLU; `n_down` x [conv 3x3 stride 2 (channels x2),
    norm, ReLU]; `n_blocks` ResnetBlocks; `n_down` x [conv-transpose 3x3 stride 2 padding 1
    output_padding 1 (channels /2), norm, ReLU]; reflect-pad 3, conv 7x7, Tanh.

    H and W must be divisible by 2**n_down (28 -> 14 -> 7 -> 14 -> 28 with n_down=2). Convs
    before a norm carry a bias only for "instance" and "none". (The reference's use_bias is
    `norm_layer == InstanceNorm2d`, so its norm="none" nets have bias-free convs; a conv with
    neither norm nor bias cannot shift its output, so "none" keeps the bias here.) The last conv
    always has a bias, as in the reference. `image_size`, when given, is checked up front.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        n_blocks: int = 6,
        n_down: int = 2,
        norm: str = "instance",
        dropout: bool = False,
        image_size: int | None = None,
    ):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        width = check_positive_int("width", width)
        self.n_blocks = _check_nonneg_int("n_blocks", n_blocks)
        self.n_down = _check_nonneg_int("n_down", n_down)
        norm = _check_norm(norm)
        if not isinstance(dropout, bool):
            raise ConfigError(f"ResnetGenerator `dropout` must be true or false, got {dropout!r}.")
        if image_size is not None:
            check_translator_size(image_size, self.n_down)
        self.image_size = image_size
        bias = norm in ("instance", "none")
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, padding=0, bias=bias),
            _norm(norm, width),
            nn.ReLU(True),
        ]
        ch = width
        for _ in range(self.n_down):
            layers += [
                nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                _norm(norm, ch * 2),
                nn.ReLU(True),
            ]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout, bias) for _ in range(self.n_blocks)]
        for _ in range(self.n_down):
            layers += [
                nn.ConvTranspose2d(
                    ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                _norm(norm, ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ResnetGenerator expects images of shape (B, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}."
            )
        h, w = x.shape[-2:]
        if h % 2**self.n_down or w % 2**self.n_down:
            check_translator_size(h if h % 2**self.n_down else w, self.n_down)
        return self.model(x)


def patch_receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch one PatchDiscriminator logit sees: 9 * 2**n_layers - 2.

    Two stride-1 4x4 convs see 7 px; each stride-2 4x4 conv below maps r to 2r + 2.
    n_layers=1: 16, 2: 34, 3: 70 (the paper's "70x70 PatchGAN"), 4: 142, 5: 286.
    """
    return 9 * 2**n_layers - 2


def patch_output_size(image_size: int, n_layers: int) -> int:
    """Side of the logit map for an image_size input: halved (floored) n_layers times, minus 2."""
    size = image_size
    for _ in range(n_layers):
        size //= 2  # conv 4x4, stride 2, padding 1: floor((s + 2 - 4) / 2) + 1 = floor(s / 2)
    return size - 2  # two conv 4x4, stride 1, padding 1: s - 1 each


class PatchDiscriminator(nn.Module):
    """PatchGAN: image (B, C, H, W) -> patch logits (B, 1, h, w), one per overlapping patch.

    conv 4x4 stride 2 (width), LeakyReLU 0.2 (no norm); n_layers - 1 x [conv 4x4 stride 2, norm,
    LeakyReLU], channels doubling up to 8 x width; conv 4x4 stride 1, norm, LeakyReLU; conv 4x4
    stride 1 to one channel. All padding 1. Each logit sees `patch_receptive_field(n_layers)`
    pixels: 70x70 at the reference's n_layers=3. Output side: `patch_output_size(H, n_layers)`.
    At 28 px, n_layers=3 leaves a single 1x1 logit (one patch covering the whole image);
    n_layers=2 (34x34 patches) gives a 5x5 map at 28 px and 6x6 at 32 px; n_layers=1 (16x16)
    gives 12x12 / 14x14. The map must be at least 1x1 (H >= 3 * 2**n_layers), checked up front
    when `image_size` is given. `spectral_norm` normalises every conv (not in the reference).
    """

    def __init__(
        self,
        in_channels: int,
        width: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        image_size: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        width = check_positive_int("width", width)
        self.n_layers = check_positive_int("n_layers", n_layers)
        norm = _check_norm(norm)
        self.receptive_field = patch_receptive_field(self.n_layers)
        self.image_size = image_size
        if image_size is not None:
            self._check_size(check_positive_int("image_size", image_size))
        bias = norm in ("instance", "none")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, self.n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(width * prev, width * mult, 4, stride=2, padding=1, bias=bias),
                _norm(norm, width * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**self.n_layers, 8)
        layers += [
            nn.Conv2d(width * prev, width * mult, 4, stride=1, padding=1, bias=bias),
            _norm(norm, width * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)
        init_weights(self)
        if spectral_norm:  # after init: the parametrization wraps the initialised weights
            apply_spectral_norm(self)

    def _check_size(self, size: int) -> None:
        if patch_output_size(size, self.n_layers) < 1:
            fits = [n for n in range(1, self.n_layers) if patch_output_size(size, n) >= 1]
            lower = (
                f"lower model.discriminator.n_layers (at most {fits[-1]} fits {size} px)"
                if fits
                else "no n_layers fits below 6 px"
            )
            raise ConfigError(
                f"PatchDiscriminator with n_layers={self.n_layers} needs images of at least "
                f"{3 * 2**self.n_layers} px (it halves them {self.n_layers} times, then two 4x4 "
                f"convs take 2 more px), got {size} px: {lower}, or raise dataset.image_size."
            )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PatchDiscriminator expects images of shape (B, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}."
            )
        self._check_size(min(x.shape[-2:]))
        return self.model(x)
