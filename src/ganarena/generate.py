"""ganarena-generate: images from a trained checkpoint (a grid, a folder of PNGs, interpolations).

    ganarena-generate ckpt_path=RUN/checkpoints/last.ckpt n=64 out=grid.png
    ganarena-generate ckpt_path=... format=folder out=fake_dir n=10000      # for external FID tools
    ganarena-generate ckpt_path=... interpolate=true steps=10 out=interp.png  # + interp.gif
    ganarena-generate ckpt_path=... label=3                                 # conditional models

Deterministic: latents (and labels) are drawn on the CPU from torch.Generator().manual_seed(seed),
so the same checkpoint, seed and settings write the same bytes. The paths written are printed on
stdout, one per line; logs go to stderr.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from numbers import Integral
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor
from torchvision.utils import save_image

from ganarena.cli import run_cli
from ganarena.errors import ConfigError

log = logging.getLogger("ganarena")

FORMATS = ("grid", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_GENERATED = re.compile(r"^\d{6,}\.png$")  # the file names format=folder writes


# -- latents -----------------------------------------------------------------------------------
def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents) at fractions `t`.

    z0, z1: (D,); t: (T,) in [0, 1]. Returns (T, D): sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1,
    w being the angle between z0 and z1; falls back to linear interpolation when they are
    (anti)parallel. The norm moves smoothly between |z0| and |z1| instead of dipping towards the
    origin as a straight line does, which keeps latents where N(0, I) puts its mass.
    """
    z0, z1 = z0.reshape(-1).double(), z1.reshape(-1).double()
    t = t.reshape(-1, 1).double()
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    if sin.abs() < 1e-6:
        out = (1 - t) * z0 + t * z1
    else:
        out = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin
    return out.float()


def interpolate_latents(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """`steps` latents (steps, D) on the slerp path from z0 to z1, both endpoints included exactly."""
    if steps < 2:
        raise ConfigError(f"steps must be at least 2 (the two endpoints), got {steps}.")
    out = slerp(z0, z1, torch.linspace(0.0, 1.0, steps, dtype=torch.float64))
    out[0], out[-1] = z0.reshape(-1), z1.reshape(-1)
    return out


def latent_endpoints(latent_dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """The two interpolation endpoints: z0, z1 ~ N(0, I), drawn in that order from `seed`."""
    return _endpoints(latent_dim, torch.Generator().manual_seed(seed))


def _endpoints(latent_dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    z0 = torch.randn(latent_dim, generator=gen)
    z1 = torch.randn(latent_dim, generator=gen)
    return z0, z1


# -- sampling ----------------------------------------------------------------------------------
def num_classes_of(module: Any) -> int | None:
    """The class count of a conditional model's generator, None for an unconditional one."""
    return getattr(module.sampler, "num_classes", None)


def run_generator(
    module: Any, z: Tensor, labels: Tensor | None = None, batch_size: int = 500
) -> Tensor:
    """G(z[, labels]) with the module's sampling generator (EMA when enabled), eval mode, on CPU."""
    out = [
        module.sample_from(
            z[s : s + batch_size], None if labels is None else labels[s : s + batch_size]
        )
        for s in range(0, len(z), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)


def sample_images(
    module: Any,
    n: int,
    generator: torch.Generator,
    labels: Tensor | None = None,
    batch_size: int = 500,
) -> Tensor:
    """n images in [-1, 1] from `module.sample` (latents from `generator`).

    A conditional model draws `labels`, or without them the classes module.sample picks
    (0, 1, ..., C-1, 0, ...), so a folder matches ganarena-eval's samples for the same seed.
    """
    kwargs = {} if labels is None else {"labels": labels}
    return module.sample(n, generator=generator, batch_size=batch_size, **kwargs)


def interpolation_images(
    module: Any, steps: int, seed: int, label: int | None = None
) -> tuple[Tensor, Tensor, int | None]:
    """(images (steps, C, H, W) in [-1, 1], latents (steps, D), label) along the slerp path.

    For a conditional model without `label`, the class is drawn from `seed` after z0 and z1.
    """
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = _endpoints(module.latent_dim, gen)  # the same pair as latent_endpoints(D, seed)
    z = interpolate_latents(z0, z1, steps)
    labels = None
    n_classes = num_classes_of(module)
    if n_classes is not None:
        if label is None:
            label = int(torch.randint(n_classes, (1,), generator=gen))
        labels = torch.full((steps,), label, dtype=torch.long)
    return run_generator(module, z, labels), z, label


def grid_labels(n: int, nrow: int, num_classes: int) -> Tensor:
    """One class per grid row (row r shows class r mod num_classes)."""
    return (torch.arange(n) // nrow) % num_classes


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8 [0, 255], rounded as torchvision.utils.save_image does."""
    x = (images.clamp(-1, 1) + 1) / 2
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def to_pil(image: Tensor) -> Image.Image:
    """One image (C, H, W) in [-1, 1] as a PIL image: mode L for 1 channel, RGB for 3."""
    a = to_uint8(image).numpy()
    return Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))


# -- checks ------------------------------------------------------------------------------------
def _int(cfg: DictConfig, key: str, low: int) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(
            f"{key} must be an integer >= {low}, got {value!r}. Fix it on the command line, "
            f"e.g. {key}={max(low, 1) if key != 'seed' else 0}."
        )
    return int(value)


def _check_label(label: Any, n_classes: int | None, ckpt_path: str) -> int | None:
    if label is None:
        return None
    if n_classes is None:
        raise ConfigError(
            f"label={label} was given, but the checkpoint '{ckpt_path}' holds an unconditional "
            "model (trained without model.conditional=true), which cannot be told a class. "
            "Drop label=, or use a checkpoint of a conditional run."
        )
    if isinstance(label, bool) or not isinstance(label, Integral) or not 0 <= label < n_classes:
        raise ConfigError(
            f"label must be a class index from 0 to {n_classes - 1} for this model "
            f"({n_classes} classes), got {label!r}. Pass e.g. label=3."
        )
    return int(label)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise ConfigError(
            f"out={path} is an existing folder; the image file would replace it. Pass a file "
            "name such as out=grid.png, or format=folder to write one PNG per image."
        )
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{path} already exists; refusing to overwrite it. Pass another out=, or "
            "overwrite=true to replace it."
        )


def _image_path(out: Path, what: str) -> Path:
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"out={out} has no image extension for the {what}; use one of "
            f"{', '.join(IMAGE_SUFFIXES)} (e.g. out=grid.png), or format=folder for a folder."
        )
    return out


def _save_atomic(write, path: Path) -> None:
    """Call write(tmp) on a hidden temp file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_grid(images: Tensor, path: Path, nrow: int) -> None:
    _save_atomic(
        lambda p: save_image(images, p, nrow=nrow, normalize=True, value_range=(-1, 1)), path
    )


# -- modes -------------------------------------------------------------------------------------
def write_grid(module: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    out = _image_path(Path(cfg.out), "grid")
    _refuse_existing(out, cfg.overwrite)
    n, nrow = _int(cfg, "n", 1), _int(cfg, "nrow", 1)
    n_classes = num_classes_of(module)
    labels = None
    if n_classes is not None:
        labels = grid_labels(n, nrow, n_classes) if label is None else torch.full((n,), label)
    gen = torch.Generator().manual_seed(cfg.seed)
    images = sample_images(module, n, gen, labels, _int(cfg, "batch_size", 1))
    _save_grid(images, out, nrow)
    log.info("wrote a grid of %d images to %s", n, out)
    return [out]


def write_folder(module: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    out = Path(cfg.out)
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise ConfigError(
            f"format=folder writes one PNG per image into a folder, but out={out} looks like an "
            "image file. Pass a folder name, e.g. out=fake_images."
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out} is an existing file, not a folder. Pass another out=.")
    existing = list(out.iterdir()) if out.is_dir() else []
    if existing and not cfg.overwrite:
        raise ConfigError(
            f"The folder {out} already holds {len(existing)} entries; refusing to overwrite them. "
            "Pass another out=, or overwrite=true to replace images written by ganarena-generate."
        )
    foreign = [p.name for p in existing if not (p.is_file() and _GENERATED.match(p.name))]
    if foreign:
        raise ConfigError(
            f"The folder {out} holds files ganarena-generate did not write (e.g. {foreign[0]}); "
            "refusing to delete them even with overwrite=true. Pass another out=."
        )
    n, batch_size = _int(cfg, "n", 1), _int(cfg, "batch_size", 1)
    classes = num_classes_of(module)
    if label is not None:
        labels = torch.full((n,), label)
    else:  # 0, 1, ..., C-1, 0, ... over the whole folder, as ganarena-eval asks for them
        labels = None if classes is None else torch.arange(n) % classes
    width = max(6, len(str(n - 1)))
    # Written into a hidden sibling and renamed at the end: a folder is either complete or absent.
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    gen = torch.Generator().manual_seed(cfg.seed)
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        y = None if labels is None else labels[start : start + m]
        images = sample_images(module, m, gen, y, batch_size)
        for i, image in enumerate(images):
            to_pil(image).save(tmp / f"{start + i:0{width}d}.png")
    if out.exists():
        shutil.rmtree(out)  # empty, or only files this tool wrote (checked above)
    tmp.rename(out)
    log.info("wrote %d PNGs (%dx%d) to %s/", n, images.shape[-1], images.shape[-2], out)
    return [out]


def write_interpolation(module: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    out = Path(cfg.out)
    if out.suffix.lower() == ".gif":
        strip, gif = out.with_suffix(".png"), out
    else:
        strip = _image_path(out, "interpolation strip")
        gif = out.with_suffix(".gif")
    for p in (strip, gif):
        _refuse_existing(p, cfg.overwrite)
    steps = _int(cfg, "steps", 2)
    images, _, label = interpolation_images(module, steps, cfg.seed, label)
    _save_grid(images, strip, nrow=steps)
    frames = [to_pil(image) for image in images]
    frame_ms = _int(cfg, "frame_ms", 1)
    _save_atomic(
        lambda p: frames[0].save(
            p, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
        ),
        gif,
    )
    what = "" if label is None else f" (class {label})"
    log.info("wrote a %d-step interpolation%s to %s and %s", steps, what, strip, gif)
    return [strip, gif]


def generate(cfg: DictConfig) -> list[Path]:
    """Write the images `cfg` asks for; returns the paths written."""
    from ganarena.module import load_module

    if OmegaConf.is_missing(cfg, "ckpt_path") or cfg.ckpt_path is None:
        raise ConfigError(
            "ganarena-generate needs a checkpoint: pass "
            "ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt."
        )
    if cfg.format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {cfg.format!r}.")
    if not isinstance(cfg.interpolate, bool) or not isinstance(cfg.overwrite, bool):
        raise ConfigError("interpolate and overwrite must be true or false.")
    if cfg.interpolate and cfg.format == "folder":
        raise ConfigError(
            "interpolate=true writes a PNG strip and an animated GIF, not a folder; drop "
            "format=folder (out= names the strip, e.g. out=interp.png)."
        )
    _int(cfg, "seed", 0)
    for key, low in (("n", 1), ("nrow", 1), ("batch_size", 1), ("steps", 2), ("frame_ms", 1)):
        _int(cfg, key, low)  # all checked before the checkpoint is loaded
    device = str(cfg.get("device", "cpu"))
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"device must be cpu or cuda (or cuda:N), got {device!r}.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device} was asked for but CUDA is not available; use device=cpu."
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device}: there are only {torch.cuda.device_count()} CUDA device(s); "
            "use device=cuda (the first) or another index."
        )
    module, _ = load_module(cfg.ckpt_path)
    module = module.to(device)
    label = _check_label(cfg.label, num_classes_of(module), cfg.ckpt_path)
    if cfg.interpolate:
        paths = write_interpolation(module, cfg, label)
    elif cfg.format == "folder":
        paths = write_folder(module, cfg, label)
    else:
        paths = write_grid(module, cfg, label)
    for p in paths:
        print(p, flush=True)
    return paths


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> Any:
    result = run_cli(generate, cfg, "ganarena-generate")
    return None if isinstance(result, float) and math.isinf(result) else result


if __name__ == "__main__":
    main()
