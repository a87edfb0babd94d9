"""R3GAN's networks (Huang, Gokaslan, Kuleshov & Tompkin 2024, "The GAN is dead; long live the
GAN! A Modern GAN Baseline", NeurIPS, arXiv:2501.05441), after brownvc/R3GAN `R3GAN/Networks.py`,
`FusedOperators.py` and `Resamplers.py` (their "Reference" pure-PyTorch paths), at 28-32 px.

As R3GAN:

- residual blocks with an inverted bottleneck: 1x1 conv expanding by `expansion` -> biased
  LeakyReLU(0.2) -> grouped 3x3 conv (`cardinality` groups, as R3GAN's `Groups=Cardinality`;
  its presets keep 16 channels per group) -> biased LeakyReLU -> 1x1 conv back, added to the input;
  no normalisation layer anywhere, and no bias but the one before each activation;
- fix-up style init (R3GAN's MSRInitializer and variance scaling): every weight N(0, gain^2 /
  fan_in); in a block's branch the first two convs get gain sqrt(2 / (1 + 0.2^2)) * L^(-1/4)
  (L = all the blocks of the network, R3GAN's VarianceScalingParameter; -1/4 = -1/(2m - 2) with
  m = 3 layers) and the last one gain 0, so every block starts as the identity;
- resampling with the [1, 2, 1] filter, interpolative: the 2-D kernel is the outer product of
  [1, 2, 1] * [1, 1] = [1, 3, 3, 1] (normalised), applied with stride 2 (x4 when upsampling), with
  zero padding as R3GAN's (so a constant image stays constant except at its one-pixel border);
  between stages a 1x1 transition conv where the width changes (G: before upsampling, D: after
  downsampling);
- G: the generative basis, a learned s0 x s0 constant per channel scaled by a linear map of z,
  then one stage per resolution (transition, then `blocks_per_stage` blocks), a 1x1 conv to
  `channels`. Conditional: a label embedding concatenated to z (R3GAN's one-hot Linear, here an
  nn.Embedding with the same init, size latent_dim by default as R3GAN's presets);
- D: a 1x1 conv from `channels`, the stages mirrored (blocks, then transition), the discriminative
  basis (a depthwise s0 x s0 conv, then a linear layer) to one logit (B,). Conditional: R3GAN's
  projection, logit = <basis features (embed_dim, default the s0 stage's width), embed(y)>.

Deviations:

- size: the first stage is s0 x s0 with s0 = image_size halved while even and > 4 (the DCGAN rule
  here: 28 -> 7, 32 -> 4), so 28 px runs 7 -> 14 -> 28; R3GAN's bases are always 4 x 4;
- output: R3GAN's G ends on the 1x1 conv, no nonlinearity; so does ours in training mode, and in
  eval mode (samples, evaluation: the task samples in eval mode) it clamps to [-1, 1]. Not tanh:
  with tanh, 400 steps of experiment=r3gan on MNIST (dataset=mnist_sample) drove G into tanh's flat
  end (all-black samples, G's gradient norm ~0, D's fake logits -9); without it the same run kept
  G's gradient norm at 2-3.5 and D's fake logits near 0;
- `widths`, `blocks_per_stage` and `cardinality` are given lowest resolution first for both
  networks (D mirrors them, as R3GAN's train.py passes reversed lists), as one value for every
  stage or a list ending with the full-resolution stage (trimmed from its start to the stages the
  image size has, so one list serves 28 and 32 px); R3GAN gives one list per network;
- no mixed precision (R3GAN runs its highest-resolution stages in fp16) and no fused CUDA ops;
- spectral normalisation is refused: the zero-initialised convs have no spectral norm to divide by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganarena.errors import ConfigError, check_int
from ganarena.models.checks import check_labels, check_num_classes, check_positive_int
from ganarena.models.dcgan import dcgan_layout

NEGATIVE_SLOPE = 0.2
# R3GAN's BiasedActivation.Gain: keeps a LeakyReLU(0.2) layer's output at unit second moment
ACTIVATION_GAIN = math.sqrt(2 / (1 + NEGATIVE_SLOPE**2))
RESAMPLING_FILTER = (1, 2, 1)


def _per_stage(name: str, value, n_stages: int, sizes: list[int], minimum: int = 1) -> list[int]:
    """One int >= minimum per stage, lowest resolution first: an int for every stage, or a list
    whose last entry is the full-resolution stage's; a longer list is trimmed from its start, so
    one list serves 28 px (3 stages: 7, 14, 28) and 32 px (4 stages: 4, 8, 16, 32)."""
    fix = "Set it in the model config (conf/model/r3gan.yaml)."
    if isinstance(value, int) and not isinstance(value, bool):
        return [check_int(f"Model setting `{name}`", value, minimum, fix)] * n_stages
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < n_stages:
        raise ConfigError(
            f"Model setting `{name}` must be one whole number for every stage or a list of at "
            f"least {n_stages} (one per stage, lowest resolution first: {sizes} px; a longer "
            f"list is trimmed from its start), got {value!r}. {fix}"
        )
    value = list(value)[len(value) - n_stages :]
    return [check_int(f"Model setting `{name}`", v, minimum, fix) for v in value]


def msr_init(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """R3GAN's MSRInitializer: weight N(0, gain^2 / fan_in) (zero for gain 0), bias zero."""
    weight = layer.weight
    fan_in = weight.shape[1] * weight[0][0].numel()
    with torch.no_grad():
        if gain:
            weight.normal_(0.0, gain / math.sqrt(fan_in))
        else:  # R3GAN's normal_(0, 0): the last conv of a residual branch
            weight.zero_()
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()
    return layer


def _conv(c_in: int, c_out: int, kernel: int = 1, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)
    return msr_init(conv, gain)


class BiasedActivation(nn.Module):
    """A learned per-channel bias (init 0), then LeakyReLU(0.2): R3GAN's BiasedActivation."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), NEGATIVE_SLOPE)


def lowpass_kernel(taps: Sequence[int] = RESAMPLING_FILTER) -> torch.Tensor:
    """R3GAN's CreateLowpassKernel(Inplace=False): taps convolved with [1, 1], outer product,
    normalised to sum 1 ([1, 2, 1] -> the 4x4 kernel of [1, 3, 3, 1])."""
    t = torch.tensor(taps, dtype=torch.float64)
    k = torch.cat([t, t.new_zeros(1)]) + torch.cat([t.new_zeros(1), t])
    kernel = torch.outer(k, k)
    return (kernel / kernel.sum()).float()


class Resample(nn.Module):
    """Interpolative up- or downsampling by 2 with the [1, 2, 1] filter, channel by channel
    (R3GAN's InterpolativeUpsampler/DownsamplerReference)."""

    def __init__(self, up: bool, taps: Sequence[int] = RESAMPLING_FILTER):
        super().__init__()
        self.up = up
        self.padding = len(taps) // 2
        # not in the state dict: it is fixed, and checkpoints hold only what is learned
        self.register_buffer("kernel", lowpass_kernel(taps), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, *self.kernel.shape)
        if self.up:  # x4: each output pixel gets a quarter of the taps
            return F.conv_transpose2d(x, 4 * k, stride=2, padding=self.padding, groups=c)
        return F.conv2d(x, k, stride=2, padding=self.padding, groups=c)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1_expand(x))))), the last conv zero at init."""

    def __init__(self, channels: int, cardinality: int, expansion: int, variance_scale: int):
        super().__init__()
        expanded = channels * expansion
        if expanded % cardinality:
            raise ConfigError(
                f"Model setting `cardinality` ({cardinality} groups) must divide the expanded "
                f"width {expanded} (= {channels} channels x expansion {expansion}). Pick a divisor, "
                f"e.g. model.cardinality={max(1, expanded // 16)} (16 channels per group, as "
                "R3GAN's presets)."
            )
        gain = ACTIVATION_GAIN * variance_scale ** (-1 / (2 * 3 - 2))  # m = 3 linear layers
        self.conv1 = _conv(channels, expanded, 1, gain=gain)
        self.act1 = BiasedActivation(expanded)
        self.conv2 = _conv(expanded, expanded, 3, groups=cardinality, gain=gain)
        self.act2 = BiasedActivation(expanded)
        self.conv3 = _conv(expanded, channels, 1, gain=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))


class _Layout:
    """Stage sizes and per-stage settings shared by G and D (lowest resolution first)."""

    def __init__(self, image_size, widths, blocks_per_stage, cardinality, expansion):
        self.s0, n_up = dcgan_layout(image_size, "R3GAN's networks need")
        self.sizes = [self.s0 * 2**i for i in range(n_up + 1)]
        n = len(self.sizes)
        self.widths = _per_stage("widths", widths, n, self.sizes)
        self.blocks = _per_stage("blocks_per_stage", blocks_per_stage, n, self.sizes, minimum=0)
        self.cardinality = _per_stage("cardinality", cardinality, n, self.sizes)
        self.expansion = check_positive_int("expansion", expansion)
        self.variance_scale = max(1, sum(self.blocks))  # R3GAN: sum(BlocksPerStage)

    def blocks_of(self, i: int) -> list[ResidualBlock]:
        return [
            ResidualBlock(self.widths[i], self.cardinality[i], self.expansion, self.variance_scale)
            for _ in range(self.blocks[i])
        ]


class R3GANGenerator(nn.Module):
    """z (B, latent_dim) -> basis (s0 x s0) -> stages doubling the resolution -> image (linear in
    training mode as R3GAN's, clamped to [-1, 1] in eval mode).

    Stage 0 is the basis and its blocks; each later stage a 1x1 conv where the width changes, a
    [1, 2, 1] upsampling, and `blocks_per_stage` residual blocks. `widths`, `blocks_per_stage` and
    `cardinality` are one int for every stage or a list, lowest resolution first, whose last entry
    is the full-resolution stage's (trimmed from its start to the stages: 3 at 28 px, 4 at 32).
    """

    def __init__(
        self,
        latent_dim: int = 64,
        image_size: int = 28,
        channels: int = 1,
        widths: int | Sequence[int] = (64, 64, 32, 8),
        blocks_per_stage: int | Sequence[int] = 1,
        cardinality: int | Sequence[int] = (8, 8, 4, 1),
        expansion: int = 2,
        num_classes: int | None = None,
        embed_dim: int | None = None,
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        lay = _Layout(image_size, widths, blocks_per_stage, cardinality, expansion)
        self.s0 = lay.s0
        fan_in = self.latent_dim
        if self.num_classes is not None:
            embed_dim = self.latent_dim if embed_dim is None else embed_dim
            self.embed = nn.Embedding(self.num_classes, check_positive_int("embed_dim", embed_dim))
            # R3GAN: Linear(one-hot, bias=False) with MSR init, i.e. N(0, 1 / num_classes)
            nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(self.num_classes))
            fan_in += embed_dim
        # R3GAN's GenerativeBasis: a learned constant per channel, scaled by a linear map of z
        self.basis = nn.Parameter(torch.randn(lay.widths[0], lay.s0, lay.s0))
        self.basis_linear = msr_init(nn.Linear(fan_in, lay.widths[0], bias=False))
        stages: list[nn.Module] = [nn.Sequential(*lay.blocks_of(0))]
        for i in range(1, len(lay.sizes)):
            transition: list[nn.Module] = []
            if lay.widths[i - 1] != lay.widths[i]:
                transition.append(_conv(lay.widths[i - 1], lay.widths[i], 1))
            stages.append(nn.Sequential(*transition, Resample(up=True), *lay.blocks_of(i)))
        self.stages = nn.Sequential(*stages)
        self.to_image = _conv(lay.widths[-1], channels, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("R3GANGenerator", self.num_classes, y, z.shape[0])
        z = z.view(z.shape[0], self.latent_dim)
        if y is not None:
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        x = self.basis.unsqueeze(0) * self.basis_linear(z).view(z.shape[0], -1, 1, 1)
        x = self.to_image(self.stages(x))
        # training sees R3GAN's linear output; samples (eval mode) are clamped to [-1, 1]
        return x if self.training else x.clamp(-1.0, 1.0)


class R3GANDiscriminator(nn.Module):
    """image -> 1x1 conv -> stages (blocks, [1, 2, 1] downsampling, 1x1 conv where the width
    changes) -> blocks at s0 -> depthwise s0 x s0 conv + linear -> logits (B,).

    `widths`, `blocks_per_stage` and `cardinality` are given as for the generator (lowest
    resolution first) and mirrored. With `num_classes`, R3GAN's projection: the basis outputs
    `embed_dim` features (default: the s0 stage's width) and the logit is their dot product with
    a learned embedding of y.
    """

    ignores_norm = True  # declared for the config checks: no normalisation layer, whatever d_norm

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        widths: int | Sequence[int] = (64, 64, 32, 8),
        blocks_per_stage: int | Sequence[int] = 1,
        cardinality: int | Sequence[int] = (8, 8, 4, 1),
        expansion: int = 2,
        num_classes: int | None = None,
        embed_dim: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.image_size = check_positive_int("image_size", image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        if spectral_norm:
            raise ConfigError(
                "model=r3gan has no spectral normalisation: its residual blocks start with their "
                "last conv at zero (R3GAN's fix-up init), which has no spectral norm to divide by, "
                "and R3GAN does not use it. Drop model.spectral_norm=true."
            )
        lay = _Layout(image_size, widths, blocks_per_stage, cardinality, expansion)
        self.s0 = lay.s0
        self.from_image = _conv(channels, lay.widths[-1], 1)
        stages: list[nn.Module] = []
        for i in range(len(lay.sizes) - 1, 0, -1):
            transition: list[nn.Module] = [Resample(up=False)]
            if lay.widths[i] != lay.widths[i - 1]:
                transition.append(_conv(lay.widths[i], lay.widths[i - 1], 1))
            stages.append(nn.Sequential(*lay.blocks_of(i), *transition))
        stages.append(nn.Sequential(*lay.blocks_of(0)))
        self.stages = nn.Sequential(*stages)
        w0 = lay.widths[0]
        out_dim = 1
        if self.num_classes is not None:
            out_dim = w0 if embed_dim is None else check_positive_int("embed_dim", embed_dim)
            self.embed = nn.Embedding(self.num_classes, out_dim)
            # R3GAN: one-hot Linear with MSR gain 1 / sqrt(embed_dim)
            std = 1 / math.sqrt(out_dim) / math.sqrt(self.num_classes)
            nn.init.normal_(self.embed.weight, 0.0, std)
        # R3GAN's DiscriminativeBasis
        self.basis = msr_init(nn.Conv2d(w0, w0, lay.s0, groups=w0, bias=False))
        self.basis_linear = msr_init(nn.Linear(w0, out_dim, bias=False))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = check_labels("R3GANDiscriminator", self.num_classes, y, x.shape[0])
        h = self.basis(self.stages(self.from_image(x))).view(x.shape[0], -1)
        out = self.basis_linear(h)
        if y is None:
            return out.view(x.shape[0])
        return (out * self.embed(y).to(out.dtype)).sum(dim=1)
