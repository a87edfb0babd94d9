"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
arXiv:1912.04958) in plain PyTorch, after NVlabs/stylegan2-ada-pytorch `training/networks.py`.

Same semantics as NVIDIA's code, without its custom CUDA ops and mixed precision:

- equalized learning rate everywhere: weights stored N(0, 1) / lr_multiplier and scaled by
  lr_multiplier / sqrt(fan_in) at run time, biases scaled by lr_multiplier;
- mapping network: z normalised to unit 2nd moment, a label embedding (normalised) concatenated for
  a conditional model, `mapping_layers` lrelu FC layers with lr_multiplier 0.01, a running average
  `w_avg` (updated in training mode, decay `w_avg_beta`) for the truncation trick;
- synthesis network: a learned 4x4 constant, modulated + demodulated 3x3 convolutions, per-layer
  noise with a learned strength, "skip" ToRGB outputs (1x1 modulated conv, no demodulation)
  upsampled with the [1, 3, 3, 1] filter and summed; no tanh (images land roughly in [-1, 1]);
- discriminator: "resnet" architecture (FromRGB, residual blocks with a 1x1 skip and sqrt(0.5)
  gains, [1, 3, 3, 1] low-pass before every downsampling), minibatch-stddev, epilogue
  conv + FC + output FC; conditional through NVIDIA's cmap projection.

Resolution: the networks run at R = the next power of two >= image_size. When image_size is not a
power of two (MNIST 28), G synthesises R x R (32) and center-crops to image_size, and D pads its
input back to R x R with -1 (the background of data scaled to [-1, 1]) before its first layer.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganarena.errors import ConfigError
from ganarena.models.checks import check_labels, check_num_classes, check_positive_int
from ganarena.run.defaults import example

NOISE_MODES = ("random", "const", "none")
# NVIDIA's bias_act def_gain for lrelu: keeps activations at ~unit variance.
_LRELU_GAIN = math.sqrt(2.0)


# ---------------------------------------------------------------------------------------------
# Validation


def _check_image_size(image_size) -> int:
    check_positive_int("image_size", image_size)
    if image_size < 4:
        raise ConfigError(
            f"StyleGAN2 needs an image_size of at least 4 (it synthesises from a learned 4x4 "
            f"constant and its discriminator ends on a 4x4 map), got {image_size}. Resize the "
            "data (dataset.image_size) or use model=mlp, which takes any size."
        )
    return int(image_size)


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            f"model.{name} must be a number in [0, 1], got {value!r}. Set it on the command "
            f"line or in the model config, e.g. model.{name}="
            f"{example(f'model.{name}', 0.5, 'stylegan2')} (conf/model/stylegan2.yaml's)."
        )
    return float(value)


def _check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}.")
    return noise_mode


def resolution_for(image_size: int) -> int:
    """The power-of-two resolution the networks run at: the smallest 2**k >= image_size (k >= 2)."""
    return max(4, 1 << (int(image_size) - 1).bit_length())


def _margins(resolution: int, image_size: int) -> tuple[int, int]:
    """(before, after) rows/columns between image_size and resolution: G crops them, D pads them."""
    before = (resolution - image_size) // 2
    return before, resolution - image_size - before


def _channels_dict(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels per resolution, NVIDIA's rule: min(channel_base // res, channel_max)."""
    check_positive_int("channel_base", channel_base)
    check_positive_int("channel_max", channel_max)
    if channel_base // resolution < 1:
        raise ConfigError(
            f"Model setting `channel_base` ({channel_base}) is smaller than the working "
            f"resolution ({resolution}), which leaves zero channels at that resolution "
            "(channels = min(channel_base // res, channel_max)). Raise channel_base."
        )
    res_list = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    return {res: min(channel_base // res, channel_max) for res in res_list}


# ---------------------------------------------------------------------------------------------
# Resampling (NVIDIA's upfirdn2d, the few cases StyleGAN2 uses, written with conv2d)


def setup_filter(taps=(1, 3, 3, 1)) -> Tensor:
    """The separable 2-D low-pass filter outer(taps, taps), normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def _filter2d(x: Tensor, f: Tensor, pad: tuple[int, int], gain: float = 1.0) -> Tensor:
    """Pad (before, after) on both axes (negative crops), then convolve each channel with `f`."""
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # flip: a true convolution, as upfirdn2d (the [1, 3, 3, 1] filter is symmetric anyway)
    k = (f * gain).to(x.dtype).flip([0, 1])
    return F.conv2d(x, k[None, None].expand(c, 1, *f.shape), groups=c)


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """Zero-insertion upsampling by `up` followed by the low-pass `f` (gain up**2), size H*up."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    fw = f.shape[-1]
    return _filter2d(x, f, ((fw + up - 1) // 2, (fw - up) // 2), gain=up * up)


def conv2d_resample(
    x: Tensor,
    w: Tensor,
    f: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> Tensor:
    """conv2d with optional 2x up- or downsampling, as NVIDIA's conv2d_resample (correlation).

    up=2: a stride-2 transposed convolution, then the low-pass `f` with gain 4. down=2: the
    low-pass `f`, then a stride-2 convolution. Output size: H * up // down. As NVIDIA's upsampling
    layers (flip_weight=False there), up=2 applies `w` as a true convolution (conv2d would use it
    flipped); the weights are learned, so only loading NVIDIA weights would care.
    """
    kw = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    fw = f.shape[-1]
    if down > 1 and up == 1:
        p0 = padding + (fw - down + 1) // 2
        p1 = padding + (fw - down) // 2
        return F.conv2d(_filter2d(x, f, (p0, p1)), w, stride=down, groups=groups)
    if up > 1 and down == 1:
        p0 = padding + (fw + up - 1) // 2 - (kw - 1)
        p1 = padding + (fw - up) // 2 - (kw - up)
        pt = max(min(-p0, -p1), 0)
        out_ch, in_per_group = w.shape[0], w.shape[1]
        # conv_transpose2d wants (in, out/groups, k, k): swap in/out within each group.
        w = w.reshape(groups, out_ch // groups, in_per_group, kw, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_ch // groups, kw, kw)
        x = F.conv_transpose2d(x, w, stride=up, padding=pt, groups=groups)
        return _filter2d(x, f, (p0 + pt, p1 + pt), gain=up * up)
    raise ValueError(f"conv2d_resample supports up or down, not both (got up={up}, down={down}).")


# ---------------------------------------------------------------------------------------------
# Layers


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def _bias_act(x: Tensor, b: Tensor | None, activation: str, gain: float = 1.0) -> Tensor:
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        x = F.leaky_relu(x, 0.2)
        gain = gain * _LRELU_GAIN
    return x * gain if gain != 1 else x


class FullyConnectedLayer(nn.Module):
    """Equalized-lr linear layer (+ optional lrelu with gain sqrt(2))."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        return _bias_act(x.matmul(w.t()), b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-lr conv (stride 1, 'same' padding) with optional 2x down/upsampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
    ):
        super().__init__()
        self.activation, self.up, self.down = activation, up, down
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter())
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, self.up, self.down, self.padding)
        return _bias_act(x, self.bias, self.activation, gain)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, k={k}, up={self.up}, down={self.down}, act={self.activation}"


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    noise: Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    fused: bool = True,
) -> Tensor:
    """StyleGAN2's modulated convolution (paper sec. 2.2, eqs. 1-3).

    Each sample's weight is w'_{oik} = s_i w_{oik}, demodulated by 1/sqrt(sum_{ik} w'^2 + 1e-8)
    so that unit-variance input gives ~unit-variance output. `fused=True` runs the whole batch as
    one grouped convolution (groups = batch) with per-sample weights; `fused=False` scales the
    activations before and after a shared-weight convolution instead (mathematically the same;
    NVIDIA uses it in training because grouped-conv weight gradients are slow). `noise` (already
    scaled) is added after demodulation, before bias and activation.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    dcoefs = None
    if demodulate:
        # sum_{i,k} (s_i w_oik)^2 as a matmul (NVIDIA sums the [N, O, I, k, k] product: same value,
        # without materialising it on the non-fused path).
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, out_ch, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x


class MappingNetwork(nn.Module):
    """z (+ label) -> w: normalise, `num_layers` equalized-lr FC layers, broadcast to num_ws.

    With `num_classes`, one-hot labels go through an FC embedding (NVIDIA's `embed`, size
    `embed_dim`, default w_dim), normalised and concatenated to the normalised z. `z_dim=0` makes a
    label-only network (the discriminator's cmap). With `num_ws` and `w_avg_beta`, the running mean
    of w is tracked in the buffer `w_avg` (training mode only) for truncation.
    """

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        num_classes: int | None = None,
        embed_dim: int | None = None,
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
        name: str = "MappingNetwork",
    ):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.num_classes = num_classes
        self.w_avg_beta = w_avg_beta
        self.name = name
        embed_dim = 0 if num_classes is None else (w_dim if embed_dim is None else embed_dim)
        if num_classes is not None:
            self.embed = FullyConnectedLayer(num_classes, embed_dim)
        features = [z_dim + embed_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            FullyConnectedLayer(a, b, activation="lrelu", lr_multiplier=lr_multiplier)
            for a, b in zip(features[:-1], features[1:], strict=True)
        )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor | None,
        y: Tensor | None = None,
        psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> Tensor:
        batch = z.shape[0] if z is not None else (y.shape[0] if isinstance(y, Tensor) else 0)
        y = check_labels(self.name, self.num_classes, y, batch)
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                got = None if z is None else tuple(z.shape)
                raise ValueError(f"{self.name}: z must have shape (N, {self.z_dim}), got {got}.")
            parts.append(normalize_2nd_moment(z.float()))
        if y is not None:
            onehot = F.one_hot(y, self.num_classes).float()
            parts.append(normalize_2nd_moment(self.embed(onehot)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)
        if hasattr(self, "w_avg"):  # w in the buffer's dtype (float32), also under autocast
            x = x.to(self.w_avg.dtype)
        if self.training and update_w_avg and hasattr(self, "w_avg"):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError(f"{self.name}: truncation (psi != 1) needs w_avg tracking.")
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            trunc = self.w_avg.lerp(x[:, :cut], psi)
            x = torch.cat([trunc, x[:, cut:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling 2x) + noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up=1):
        super().__init__()
        self.resolution, self.up = resolution, up
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", setup_filter())

    def forward(self, x: Tensor, w: Tensor, noise_mode: str, fused: bool, gain=1.0) -> Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(shape, device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x, self.weight, styles, noise, self.up, 1, self.resample_filter, fused=fused
        )
        return _bias_act(x, self.bias, "lrelu", gain)


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation; equalized lr through the styles."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return _bias_act(x, self.bias, "linear")


class SynthesisBlock(nn.Module):
    """One resolution of the "skip" synthesis network: (const |) conv0 (up) + conv1 + ToRGB."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim)
        self.register_buffer("resample_filter", setup_filter())
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x, img, ws: Tensor, noise_mode: str, fused: bool):
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, next(w_iter), noise_mode, fused)
        x = self.conv1(x, next(w_iter), noise_mode, fused)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused)
        return x, (img + y if img is not None else y)


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, image_size, image_size).

    Synthesises at `resolution` (a power of two) and center-crops to `image_size` if smaller.
    """

    def __init__(
        self,
        w_dim: int,
        resolution: int,
        img_channels: int,
        channels: dict[int, int],
        image_size: int | None = None,
    ):
        super().__init__()
        self.w_dim, self.resolution = w_dim, resolution
        self.image_size = resolution if image_size is None else image_size
        self.crop = _margins(resolution, self.image_size)[0]
        self.block_resolutions = sorted(channels)
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_ch, channels[res], w_dim, res, img_channels)
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last ToRGB; the others share the next block's first w

    def forward(self, ws: Tensor, noise_mode: str = "random", fused: bool | None = None) -> Tensor:
        _check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"synthesis: ws must have shape (N, {self.num_ws}, {self.w_dim}), "
                f"got {tuple(ws.shape)}."
            )
        if fused is None:  # NVIDIA's choice: per-sample grouped conv only outside training
            fused = not self.training
        x = img = None
        w_idx = 0
        for block in self.blocks:
            block_ws = ws.narrow(1, w_idx, block.num_conv + 1)
            x, img = block(x, img, block_ws, noise_mode, fused)
            w_idx += block.num_conv
        if self.image_size != self.resolution:
            c, s = self.crop, self.image_size
            img = img[:, :, c : c + s, c : c + s]
        return img


# ---------------------------------------------------------------------------------------------
# Generator


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator: G(z) or G(z, y) -> images (N, channels, image_size, image_size).

    `mapping(z, y=None, psi=1.0, truncation_cutoff=None)` -> ws (N, num_ws, w_dim);
    `synthesis(ws, noise_mode="random")` -> images. `forward` chains them and, in training mode,
    applies style-mixing regularisation with probability `style_mixing_prob` (paper sec. 2 /
    StyleGAN sec. 3.1; NVIDIA's loss.run_G): a second z ~ N(0, I), with the same labels, replaces
    the ws from a random crossover layer in [1, num_ws) onwards, for the whole batch. Eval mode
    never mixes and never updates `mapping.w_avg`.

    Runs at the next power of two >= image_size and center-crops (28 -> synthesised at 32, rows
    and columns 2..29 kept). Output is not squashed (no tanh, as NVIDIA): roughly [-1, 1].
    Defaults are small for CPU at 28-32 px: z = w = 128, 2 mapping layers, channels
    min(1024 // res, 128) = 128, 128, 64, 32 at 4, 8, 16, 32 px. NVIDIA's CIFAR-10 config uses
    z = w = 512, 2 mapping layers and 512 channels at every resolution (channel_base 16384).
    """

    def __init__(
        self,
        latent_dim: int = 128,
        image_size: int = 28,
        channels: int = 1,
        w_dim: int = 128,
        mapping_layers: int = 2,
        channel_base: int = 1024,
        channel_max: int = 128,
        num_classes: int | None = None,
        embed_dim: int | None = None,
        style_mixing_prob: float = 0.0,
        w_avg_beta: float = 0.995,
        mapping_lr_multiplier: float = 0.01,
    ):
        super().__init__()
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.image_size = _check_image_size(image_size)
        self.channels = check_positive_int("channels", channels)
        self.w_dim = check_positive_int("w_dim", w_dim)
        self.num_classes = check_num_classes(num_classes)
        check_positive_int("mapping_layers", mapping_layers)
        if embed_dim is not None:
            check_positive_int("embed_dim", embed_dim)
        self.style_mixing_prob = _check_fraction("style_mixing_prob", style_mixing_prob)
        w_avg_beta = _check_fraction("w_avg_beta", w_avg_beta)
        if not (isinstance(mapping_lr_multiplier, Real) and mapping_lr_multiplier > 0):
            raise ConfigError(
                f"Model setting `mapping_lr_multiplier` must be a positive number, got "
                f"{mapping_lr_multiplier!r} (NVIDIA and the paper use 0.01)."
            )
        self.resolution = resolution_for(self.image_size)
        chans = _channels_dict(self.resolution, channel_base, channel_max)
        self.synthesis = SynthesisNetwork(
            self.w_dim, self.resolution, self.channels, chans, image_size=self.image_size
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            self.latent_dim,
            self.w_dim,
            self.num_ws,
            num_layers=mapping_layers,
            num_classes=self.num_classes,
            embed_dim=embed_dim,
            lr_multiplier=float(mapping_lr_multiplier),
            w_avg_beta=w_avg_beta,
            name="StyleGAN2Generator",
        )

    def stats(self) -> dict[str, Tensor]:
        """Scalars a training task logs (train/<name>): the norm of the tracked average w, which
        truncation pulls towards (it should settle as the mapping network does)."""
        return {"w_avg_norm": self.mapping.w_avg.detach().norm()}

    def mix_styles(self, ws: Tensor, z: Tensor, y: Tensor | None = None, **mapping_kw) -> Tensor:
        """Style mixing as NVIDIA's loss.run_G: with probability style_mixing_prob, the ws from a
        random crossover layer on come from a fresh z (no w_avg update). Draws on the device, no
        host sync: the second mapping always runs when style_mixing_prob > 0."""
        if self.style_mixing_prob <= 0:
            return ws
        cutoff = torch.randint(1, self.num_ws, (), device=ws.device)
        mix = torch.rand((), device=ws.device) < self.style_mixing_prob
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, self.num_ws))
        ws2 = self.mapping(torch.randn_like(z), y, update_w_avg=False, **mapping_kw)
        layer = torch.arange(self.num_ws, device=ws.device).view(1, -1, 1)
        return torch.where(layer >= cutoff, ws2, ws)

    def forward(
        self,
        z: Tensor,
        y: Tensor | None = None,
        psi: float = 1.0,
        noise_mode: str = "random",
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        _check_noise_mode(noise_mode)
        ws = self.mapping(z, y, psi=psi, truncation_cutoff=truncation_cutoff)
        if self.training:
            ws = self.mix_styles(ws, z, y, psi=psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


# ---------------------------------------------------------------------------------------------
# Discriminator


class MinibatchStdLayer(nn.Module):
    """Appends the mean stddev over groups of `group_size` samples as `num_channels` feature maps.

    NVIDIA uses G = min(group_size, N) and requires N % G == 0; here G is the largest divisor of N
    not above group_size (so any batch works; a batch of 1 gets a stddev of sqrt(1e-8) ~ 0).
    Groups are strided as in NVIDIA's reshape: sample i belongs to group i % (N // G).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: conv3x3 -> conv3x3 (down 2x), plus a 1x1 (down 2x) skip; sqrt(0.5) gains."""

    def __init__(self, tmp_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 "resnet" discriminator: D(x) or D(x, y) -> logits (N,), as DCGANDiscriminator.

    Input (N, channels, image_size, image_size); when image_size is not a power of two it is padded
    with -1 to the next one (28 -> 32, 2 rows/columns each side), the background value of data in
    [-1, 1], matching the generator's center crop. FromRGB (1x1) at full resolution, one residual
    block per halving down to 4x4, then the epilogue: minibatch stddev, conv 3x3, FC, output FC.
    Conditional (`num_classes`): NVIDIA's projection, logit = <out(x), cmap(y)> / sqrt(cmap_dim),
    cmap from a label-only mapping network (`mapping_layers` FC layers, lr multiplier 0.01; NVIDIA's
    default is 8) and out(x) an FC to cmap_dim (default: channels at 4x4).
    `spectral_norm` (not part of StyleGAN2) normalises every conv/FC weight; the normalised weight
    then replaces the equalized-lr scaling (its gain 1/sqrt(fan_in) would shrink every layer).
    """

    # FreezeD (freeze_d=K) counts these, NVIDIA's equalised-lr layers, not torch's Conv2d/Linear.
    freezable_layers = (Conv2dLayer, FullyConnectedLayer)

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        channel_base: int = 1024,
        channel_max: int = 128,
        num_classes: int | None = None,
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        spectral_norm: bool = False,
        cmap_dim: int | None = None,
        mapping_layers: int = 8,
    ):
        super().__init__()
        self.image_size = _check_image_size(image_size)
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_num_classes(num_classes)
        if mbstd_group_size is not None:
            check_positive_int("mbstd_group_size", mbstd_group_size)
        if (
            isinstance(mbstd_num_channels, bool)
            or not isinstance(mbstd_num_channels, Integral)
            or mbstd_num_channels < 0
        ):
            raise ConfigError(
                f"Model setting `mbstd_num_channels` must be an integer >= 0 (0 disables the "
                f"minibatch-stddev layer), got {mbstd_num_channels!r}."
            )
        self.resolution = resolution_for(self.image_size)
        chans = _channels_dict(self.resolution, channel_base, channel_max)
        c4 = chans[4]
        if mbstd_num_channels and c4 % mbstd_num_channels:
            raise ConfigError(
                f"Model setting `mbstd_num_channels` ({mbstd_num_channels}) must divide the "
                f"discriminator's channels at 4x4 ({c4}); use 1 (NVIDIA's default)."
            )
        self.pad = _margins(self.resolution, self.image_size)
        top = self.resolution
        self.fromrgb = Conv2dLayer(self.channels, chans[top], 1, activation="lrelu")
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(chans[res], chans[res // 2])
            for res in sorted(chans, reverse=True)
            if res > 4
        )
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        )
        self.conv = Conv2dLayer(c4 + mbstd_num_channels, c4, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation="lrelu")
        self.cmap_dim = 0
        if self.num_classes is not None:
            self.cmap_dim = c4 if cmap_dim is None else check_positive_int("cmap_dim", cmap_dim)
            self.mapping = MappingNetwork(
                0,
                self.cmap_dim,
                None,
                num_layers=check_positive_int("mapping_layers", mapping_layers),
                num_classes=self.num_classes,
                w_avg_beta=None,
                name="StyleGAN2Discriminator",
            )
        self.out = FullyConnectedLayer(c4, self.cmap_dim or 1)
        if spectral_norm:
            for m in self.modules():
                if isinstance(m, (Conv2dLayer, FullyConnectedLayer)):
                    m.weight_gain = 1.0
                    _spectral_norm(m)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        n = x.shape[0]
        y = check_labels("StyleGAN2Discriminator", self.num_classes, y, n)
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"StyleGAN2Discriminator: images must have shape (N, {', '.join(map(str, expected))}),"
                f" got {tuple(x.shape)}."
            )
        if self.image_size != self.resolution:
            a, b = self.pad
            x = F.pad(x, [a, b, a, b], value=-1.0)
        x = self.fromrgb(x)
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.fc(self.conv(x).flatten(1))
        x = self.out(x)
        if y is None:
            return x.view(n)
        cmap = self.mapping(None, y)
        return (x * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)
