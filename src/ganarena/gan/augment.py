"""Data augmentation for GAN training, on batches of images in [-1, 1] (B, C, H, W).

`build_augment(cfg)` turns a conf/augment/*.yaml node into a callable (or None for `none`) with
an `applies_to` attribute:

- "real": classic augmentation of the real data only (`ClassicAugment`). G can learn to imitate
  the augmentations ("leaking", Karras et al. 2020), so keep strengths small.
- "both": DiffAugment (`DiffAugment`, Zhao et al. 2020), applied with fresh randomness to real
  *and* fake images before every D call, in the D and the G step alike; and adaptive augmentation
  (`AdaptiveAugment`, augment=ada: Karras et al. 2020's controller over DiffAugment's ops, each
  applied to an image with a probability p that follows D's overfitting).

Both are written by hand in torch rather than taken from torchvision.transforms.v2 (or kornia,
which is not a dependency):

- DiffAugment must be differentiable with respect to the fake images (G's gradient flows through
  it) and behave the same inside every training graph; it follows the authors' reference code
  (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py) op for op, with a
  `strength` that scales every magnitude (0 = identity).
- v2 transforms draw one set of random parameters per call, so a batch would share a single
  rotation/crop, and calling them per image costs a Python loop: 13.5 ms per 64-image MNIST
  batch on one core, against 0.5 ms for the batched `affine_grid`/`grid_sample` used here with
  per-image parameters (rotation, scale and crop fold into one affine map per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganarena.errors import ConfigError

__all__ = [
    "AUGMENT_FNS",
    "AdaptiveAugment",
    "ClassicAugment",
    "DiffAugment",
    "build_augment",
    "diff_augment",
    "rand_brightness",
    "rand_contrast",
    "rand_cutout",
    "rand_saturation",
    "rand_translation",
]


def _check_strength(name: str, value: Any, high: float | None = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (high is not None and value >= high):
        rng = ">= 0" if high is None else f">= 0 and < {high}"
        from ganarena.run.defaults import example

        raise ConfigError(
            f"augment.{name} must be a number {rng} (0 turns it off), got {value!r}. "
            f"Fix it on the command line, e.g. augment.{name}={example(f'augment.{name}', 0.1)}."
        )
    return float(value)


def _rand(x: Tensor) -> Tensor:
    """One uniform [0, 1) draw per image, shaped (B, 1, 1, 1)."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


# -- DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient
#    GAN Training", arXiv:2006.10738). At strength 1 every op matches the reference code exactly.


def rand_brightness(x: Tensor, strength: float = 1.0) -> Tensor:
    """Add one offset per image, uniform in [-0.5, 0.5) * strength."""
    if strength == 0:
        return x
    return x + (_rand(x) - 0.5) * strength


def rand_saturation(x: Tensor, strength: float = 1.0) -> Tensor:
    """Scale each image's deviation from its per-pixel channel mean by 1 + (U[-1, 1)) * strength."""
    if strength == 0:
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (1 + (_rand(x) * 2 - 1) * strength) + mean


def rand_contrast(x: Tensor, strength: float = 1.0) -> Tensor:
    """Scale each image's deviation from its mean by 1 + U[-0.5, 0.5) * strength."""
    if strength == 0:
        return x
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (1 + (_rand(x) - 0.5) * strength) + mean


def rand_translation(x: Tensor, strength: float = 1.0, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * strength of its size (integer pixels), zero-filled."""
    b, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio * strength + 0.5), int(w * ratio * strength + 0.5)
    if shift_h == 0 and shift_w == 0:
        return x
    tx = torch.randint(-shift_h, shift_h + 1, size=(b, 1, 1), device=x.device)
    ty = torch.randint(-shift_w, shift_w + 1, size=(b, 1, 1), device=x.device)
    grid_b, grid_x, grid_y = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + tx + 1, 0, h + 1)
    grid_y = torch.clamp(grid_y + ty + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_b, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x: Tensor, strength: float = 1.0, ratio: float = 0.5) -> Tensor:
    """Zero one square of side ratio * strength of the image at a random centre per image."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio * strength + 0.5), int(w * ratio * strength + 0.5)
    if size_h == 0 or size_w == 0:
        return x
    off_x = torch.randint(0, h + (1 - size_h % 2), size=(b, 1, 1), device=x.device)
    off_y = torch.randint(0, w + (1 - size_w % 2), size=(b, 1, 1), device=x.device)
    grid_b, grid_x, grid_y = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(size_h, device=x.device),
        torch.arange(size_w, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + off_x - size_h // 2, min=0, max=h - 1)
    grid_y = torch.clamp(grid_y + off_y - size_w // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[grid_b, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


AUGMENT_FNS: dict[str, list[Callable[[Tensor, float], Tensor]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


def _parse_policy(policy: str | Sequence[str] | None) -> tuple[str, ...]:
    if policy is None:
        return ()
    parts = policy.split(",") if isinstance(policy, str) else list(policy)
    names = tuple(str(p).strip() for p in parts if str(p).strip())
    bad = [p for p in names if p not in AUGMENT_FNS]
    if bad:
        raise ConfigError(
            f"Unknown DiffAugment policy part(s) {bad}; available: {', '.join(AUGMENT_FNS)}. "
            "Give a comma-separated subset, e.g. augment.policy=[color,translation,cutout] or "
            "'augment.policy=\"translation,cutout\"' on the command line."
        )
    return names


def diff_augment(
    x: Tensor, policy: str | Sequence[str] = "color,translation,cutout", strength: float = 1.0
) -> Tensor:
    """DiffAugment as a function: the policy's ops in order, each with fresh per-image draws."""
    for name in _parse_policy(policy):
        for fn in AUGMENT_FNS[name]:
            x = fn(x, strength)
    return x.contiguous()


class DiffAugment:
    """Differentiable augmentation for real and fake images alike (Zhao et al. 2020).

    `policy`: comma-separated string or list from {color, translation, cutout}.
    `strength` scales every magnitude (brightness offset, saturation/contrast range, shift and
    cutout size); 1 reproduces the paper, 0 is the identity. Colour ops may leave [-1, 1], as in
    the reference code: D sees real and fake images augmented alike.
    """

    applies_to = "both"

    def __init__(
        self, policy: str | Sequence[str] = "color,translation,cutout", strength: float = 1.0
    ) -> None:
        self.policy = _parse_policy(policy)
        self.strength = _check_strength("strength", strength)

    def __call__(self, x: Tensor) -> Tensor:
        if not self.policy or self.strength == 0:
            return x
        return diff_augment(x, self.policy, self.strength)

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r}, strength={self.strength})"


class ClassicAugment:
    """Classic augmentation of real images: rotation, scaling, crop, contrast, additive noise.

    Each image draws its own parameters, uniformly within each strength:
    - `rotation`: angle in [-rotation, rotation] degrees;
    - `scale`: zoom factor in [1 - scale, 1 + scale] (zooming out fills with -1, black);
    - `crop`: a square crop of side in [1 - crop, 1] of the image at a random position, resized
      back to full size (like v2.RandomResizedCrop with ratio 1);
    - `contrast`: deviation from the image mean scaled by [1 - contrast, 1 + contrast]
      (like v2.ColorJitter(contrast=...));
    - `noise`: Gaussian noise of standard deviation `noise` (in [-1, 1] units).
    Output is clamped to [-1, 1]. Randomness comes from torch's global generator on x's device.
    """

    applies_to = "real"

    def __init__(
        self,
        rotation: float = 10.0,
        scale: float = 0.1,
        crop: float = 0.1,
        contrast: float = 0.2,
        noise: float = 0.02,
    ) -> None:
        self.rotation = _check_strength("rotation", rotation, high=180.0)
        self.scale = _check_strength("scale", scale, high=1.0)
        self.crop = _check_strength("crop", crop, high=1.0)
        self.contrast = _check_strength("contrast", contrast, high=1.0)
        self.noise = _check_strength("noise", noise)

    def __call__(self, x: Tensor) -> Tensor:
        if self.rotation or self.scale or self.crop:
            x = self.warp(x, torch.rand(x.shape[0], 5, dtype=x.dtype, device=x.device))
        if self.contrast:
            factor = 1 + (_rand(x) * 2 - 1) * self.contrast
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * factor + mean
        if self.noise:
            x = x + torch.randn_like(x) * self.noise
        return x.clamp(-1, 1)

    def warp(self, x: Tensor, u: Tensor) -> Tensor:
        """Rotation, scaling and crop as one affine resampling per image.

        u: (B, 5) uniform [0, 1) draws for (angle, zoom, crop side, crop x, crop y); 0.5 is the
        neutral value of the first two and of the crop position, 0 of the crop side.
        """
        angle = (u[:, 0] * 2 - 1) * math.radians(self.rotation)
        zoom = 1 + (u[:, 1] * 2 - 1) * self.scale  # > 1 magnifies
        side = 1 - u[:, 2] * self.crop  # crop side as a fraction of the image
        # Crop centre anywhere that keeps the crop inside the image (normalised coords).
        tx = (u[:, 3] * 2 - 1) * (1 - side)
        ty = (u[:, 4] * 2 - 1) * (1 - side)
        # Output coords p -> input coords side * R(angle) p / zoom + t: rotate and zoom about the
        # crop centre, then map the crop onto the image.
        cos, sin = torch.cos(angle), torch.sin(angle)
        k = side / zoom
        theta = torch.stack(
            [torch.stack([k * cos, -k * sin, tx], 1), torch.stack([k * sin, k * cos, ty], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # Sample x + 1 with zero padding, so areas outside the image come back as -1 (black).
        out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out - 1

    def __repr__(self) -> str:
        return (
            f"ClassicAugment(rotation={self.rotation}, scale={self.scale}, crop={self.crop}, "
            f"contrast={self.contrast}, noise={self.noise})"
        )


class AdaptiveAugment(nn.Module):
    """Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative
    Adversarial Networks with Limited Data", arXiv:2006.06676, sec. 3; NVlabs/stylegan2-ada-pytorch
    training/training_loop.py): every augmentation is applied to each image with probability p,
    and p follows the overfitting heuristic r_t = E[sign(D(x_real))] (over the real logits of the
    last `interval` D steps): raised by (images in those steps) / (speed_kimg * 1000) when
    r_t > target, lowered by as much otherwise, kept in [0, 1].

    The operations are DiffAugment's (`policy`: brightness, saturation, contrast, translation,
    cutout; Zhao et al. 2020), each with its own per-image draw against p, not stylegan2-ada's
    18-op pipeline (flips, rotations, filters, ...); like DiffAugment they are differentiable and
    applied to real and fake images in the D and G steps. `strength` scales every magnitude.

    p, the r_t of the last adjustment and the partial sums of the current interval are buffers:
    they are saved in checkpoints, and a resumed run continues exactly (stylegan2-ada's --resume
    restarts p at 0 unless given). With DDP the sums are all-reduced, so every rank keeps one p.
    The task calls `observe(signs_of, images)` after each D step with D's real logits minus the
    loss's decision logit (sign(D(x)) for the logistic loss).
    """

    applies_to = "both"

    def __init__(
        self,
        policy: str | Sequence[str] = "color,translation,cutout",
        strength: float = 1.0,
        target: float = 0.6,
        interval: int = 4,
        speed_kimg: float = 100.0,
        p: float = 0.0,
    ) -> None:
        super().__init__()
        self.policy = _parse_policy(policy)
        if not self.policy:
            raise ConfigError("augment=ada needs at least one op: e.g. augment.policy=[color].")
        self.ops = [fn for name in self.policy for fn in AUGMENT_FNS[name]]
        self.strength = _check_strength("strength", strength)
        self.target = _check_strength("target", target, high=1.0)
        self.speed_kimg = _check_strength("speed_kimg", speed_kimg)
        if self.speed_kimg == 0:
            raise ConfigError("augment.speed_kimg must be > 0, e.g. augment.speed_kimg=100.")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"augment.interval must be an integer >= 1, got {interval!r}.")
        self.interval = interval
        start = _check_strength("p", p, high=1.0 + 1e-9)
        self.register_buffer("p", torch.tensor(start))
        self.register_buffer("rt", torch.zeros([]))  # r_t of the last adjustment
        self.register_buffer("sums", torch.zeros(3, dtype=torch.float64))  # signs, logits, images
        self.register_buffer("steps", torch.zeros([], dtype=torch.long))  # D steps in the sums

    def forward(self, x: Tensor) -> Tensor:
        p = self.p.to(x.dtype)
        for op in self.ops:  # each op: its own draw per image, applied where it falls below p
            x = torch.where(_rand(x) < p, op(x, self.strength), x)
        return x.contiguous()

    @torch.no_grad()
    def observe(self, signs_of: Tensor, images: int) -> None:
        """Add one D step's real logits (minus the decision logit) to the sums; every `interval`
        steps adjust p from them and start new sums."""
        signs = torch.sign(signs_of.detach().to(torch.float64))
        self.sums += torch.stack(
            [signs.sum(), signs.new_tensor(float(signs.numel())), signs.new_tensor(float(images))]
        )
        self.steps += 1
        if int(self.steps) < self.interval:
            return
        sums = self.sums.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
        rt = sums[0] / sums[1].clamp(min=1)
        adjust = torch.sign(rt - self.target) * sums[2] / (self.speed_kimg * 1000)
        self.p.copy_((self.p.double() + adjust).clamp(0, 1))
        self.rt.copy_(rt)
        self.sums.zero_()
        self.steps.zero_()

    def stats(self) -> dict[str, Tensor]:
        """train/ada_p (the probability now) and train/ada_rt (r_t at the last adjustment)."""
        return {"train/ada_p": self.p.detach().clone(), "train/ada_rt": self.rt.detach().clone()}

    def extra_repr(self) -> str:
        return (
            f"policy={','.join(self.policy)!r}, strength={self.strength}, target={self.target}, "
            f"interval={self.interval}, speed_kimg={self.speed_kimg}"
        )


AUGMENTS: dict[str, type] = {
    "classic": ClassicAugment,
    "diffaugment": DiffAugment,
    "ada": AdaptiveAugment,
}


def build_augment(cfg: Mapping[str, Any] | None) -> Callable[[Tensor], Tensor] | None:
    """The augmentation named by `cfg.name` (conf/augment/*.yaml), or None for `none`/None.

    The other keys of `cfg` are the constructor's arguments.
    """
    if cfg is None:
        return None
    kwargs = dict(cfg.items())
    name = kwargs.pop("name", None)
    if name in (None, "none"):
        return None
    if name not in AUGMENTS:
        raise ConfigError(
            f"augment.name={name!r} is not a known augmentation; available: none, "
            f"{', '.join(AUGMENTS)}. Choose one with augment=<name>."
        )
    if isinstance(kwargs.get("policy"), Sequence) and not isinstance(kwargs["policy"], str):
        kwargs["policy"] = list(kwargs["policy"])  # ListConfig -> list
    try:
        return AUGMENTS[name](**kwargs)
    except TypeError as e:
        raise ConfigError(
            f"Bad setting for augment={name}: {e}. See conf/augment/{name}.yaml for its keys."
        ) from None


def build_d_input(cfg: Mapping[str, Any] | None, conditional: bool = False) -> list[Callable]:
    """The discriminator-input transforms (conf/d_input/*.yaml, `d_input=[a,b]`), in config order.

    The plug-in point for what D sees (PacGAN's packing and its like): each entry is an object
    built from its `_target_` (any importable class, also outside the package), called as
    `t(x, real=bool) -> Tensor` on D's real and fake inputs alike, after `augment=`. One whose
    output no longer holds one row per input image declares `keeps_batch = False`; such a
    transform cannot pair rows with class labels, so it is refused with a conditional D.
    """
    transforms = []
    for name, t in (cfg or {}).items():
        if t is None:  # d_input.<name>=null switches one off
            continue
        if not callable(t):
            raise ConfigError(
                f"d_input.{name} is {t!r}, not a transform: give it a `_target_` naming a class "
                'whose instances are called as t(x, real=...) -> Tensor (README, "Extending '
                'ganarena"), or remove it with ~d_input.' + name + "."
            )
        if conditional and not getattr(t, "keeps_batch", True):
            raise ConfigError(
                f"d_input.{name} ({type(t).__name__}) merges several images into one D input, so "
                "D's inputs no longer pair with class labels, but the model is class-conditional. "
                "Train unconditionally (model.conditional=false) or drop that transform."
            )
        transforms.append(t)
    return transforms
