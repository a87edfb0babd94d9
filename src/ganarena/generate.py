"""ganarena-generate: images from a trained checkpoint (a grid, a folder of PNGs, interpolations).

    ganarena-generate ckpt_path=RUN/checkpoints/last.ckpt n=64 out=grid.png
    ganarena-generate ckpt_path=... format=folder out=fake_dir n=10000      # for external FID tools
    ganarena-generate ckpt_path=... interpolate=true steps=10 out=interp.png  # + interp.gif
    ganarena-generate ckpt_path=... psi=0.7                  # style-based models: truncation
    ganarena-generate ckpt_path=... interpolate=true space=w  # ... interpolation in W
    ganarena-generate ckpt_path=... mix=true out=mix.png      # ... style-mixing figure
    ganarena-generate ckpt_path=... label=3                                 # conditional models
    ganarena-generate ckpt_path=... translate=IN_DIR direction=ab out=OUT_DIR  # translation models

Deterministic: sample i's latent depends on (seed, i) alone (tasks.base.seeded_normal, drawn on
the CPU), so the same checkpoint, seed and settings write the same bytes, and a folder holds the
images ganarena-eval scores for eval.seed=seed; a translation involves no draws. The paths written are printed on
stdout, one per line; logs go to stderr.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ganarena.cli import run_cli
from ganarena.errors import ConfigError, check_int, check_memory
from ganarena.run.files import (
    IMAGE_EXTENSIONS,
    atomic_write,
    existing_checkpoint,
    nearest_existing,
    writable_dir,
)

log = logging.getLogger("ganarena")

FORMATS = ("grid", "folder")
_GENERATED = re.compile(r"^\d{6,}\.png$")  # the file names format=folder writes


# -- checks ------------------------------------------------------------------------------------
def _int(cfg: DictConfig, key: str, low: int) -> int:
    """cfg[key] as an int >= low, else a ConfigError whose example is conf/generate.yaml's."""
    from ganarena.run.defaults import example

    def fits(v: Any) -> bool:
        return isinstance(v, Integral) and not isinstance(v, bool) and v >= low

    shown = example(key, max(low, 1), valid=fits, config="generate")
    return check_int(key, cfg.get(key), low, f"Fix it on the command line, e.g. {key}={shown}.")


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


def _check_room(task: Any, cfg: DictConfig) -> None:
    """Refuse up front what cannot be written: an unwritable destination, a grid that cannot be
    held in memory, or a folder of PNGs larger than the free disk (estimates in the message)."""
    out = Path(cfg.out)
    probe = nearest_existing(out.parent if out.suffix else out)
    if not writable_dir(probe):
        raise ConfigError(
            f"out={out}: {probe} is {'a file' if probe.exists() else 'missing'} or not writable, "
            "so nothing could be saved there. Pass an out= in a writable folder."
        )
    n = _int(cfg, "n", 1)
    shape = task.sample(1, seed=0)[0].shape[1:]
    pixels = n * math.prod(shape)
    if cfg.format == "folder" and not cfg.interpolate and not cfg.mix:
        free = shutil.disk_usage(probe).free
        if pixels > free:  # an 8-bit PNG of noise-free digits is smaller; pixels bound it
            raise ConfigError(
                f"n={n} images of {tuple(shape)} may take up to {pixels / 1e9:.3g} GB as PNGs, "
                f"more than the {free / 1e9:.3g} GB free under {probe}. Lower n= or pass an "
                "out= on a larger disk."
            )
    elif not cfg.interpolate and not cfg.mix:
        check_memory(
            pixels * 4 * 3,  # the float images, the grid tensor and its 8-bit copy
            f"A grid of n={n} images of {tuple(shape)}",
            "Lower n= (a grid is for looking at: 64-1,024 images), or write them one PNG per "
            "image with format=folder.",
        )


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
    if out.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ConfigError(
            f"out={out} has no image extension for the {what}; use one of "
            f"{', '.join(IMAGE_EXTENSIONS)} (e.g. out=grid.png), or format=folder for a folder."
        )
    return out


# -- modes -------------------------------------------------------------------------------------
def write_grid(task: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    from ganarena.gan import sampling

    out = _image_path(Path(cfg.out), "grid")
    _refuse_existing(out, cfg.overwrite)
    n, nrow = _int(cfg, "n", 1), _int(cfg, "nrow", 1)
    n_classes = task.num_classes
    labels = None
    if n_classes is not None:
        labels = sampling.class_labels(n, n_classes, label, nrow)
    images = sampling.sample_stream(task, n, cfg.seed, labels, _int(cfg, "batch_size", 1), cfg.psi)
    sampling.save_grid(images, out, nrow)
    log.info("wrote a grid of %d images to %s", n, out)
    return [out]


def write_folder(task: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    from ganarena.gan import sampling

    out = Path(cfg.out)
    if out.suffix.lower() in IMAGE_EXTENSIONS:
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
    classes = task.num_classes
    # label, or 0, 1, ..., C-1, 0, ... over the whole folder, as ganarena-eval asks for them
    labels = None if classes is None else sampling.class_labels(n, classes, label)
    width = max(6, len(str(n - 1)))
    # Written into a hidden sibling and renamed at the end: a folder is either complete or absent.
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            y = None if labels is None else labels[start : start + m]
            images, _ = task.sample(m, seed=cfg.seed, labels=y, start=start, psi=cfg.psi)
            for i, image in enumerate(images):
                sampling.to_pil(image).save(tmp / f"{start + i:0{width}d}.png")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)  # empty, or only files this tool wrote (checked above)
    tmp.rename(out)
    log.info("wrote %d PNGs (%dx%d) to %s/", n, images.shape[-1], images.shape[-2], out)
    return [out]


def write_interpolation(task: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    from ganarena.gan import sampling

    out = Path(cfg.out)
    if out.suffix.lower() == ".gif":
        strip, gif = out.with_suffix(".png"), out
    else:
        strip = _image_path(out, "interpolation strip")
        gif = out.with_suffix(".gif")
    for p in (strip, gif):
        _refuse_existing(p, cfg.overwrite)
    steps = _int(cfg, "steps", 2)
    images, _, label = sampling.interpolation_images(
        task, steps, cfg.seed, label, cfg.psi, cfg.space
    )
    sampling.save_grid(images, strip, nrow=steps)
    frames = [sampling.to_pil(image) for image in images]
    frame_ms = _int(cfg, "frame_ms", 1)
    atomic_write(
        gif,
        lambda p: frames[0].save(
            p, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
        ),
    )
    what = "" if label is None else f" (class {label})"
    log.info("wrote a %d-step interpolation%s to %s and %s", steps, what, strip, gif)
    return [strip, gif]


def write_mixing(task: Any, cfg: DictConfig, label: int | None) -> list[Path]:
    from ganarena.gan import sampling

    out = _image_path(Path(cfg.out), "style-mixing figure")
    _refuse_existing(out, cfg.overwrite)
    rows, cols = list(cfg.mix_rows), list(cfg.mix_cols)
    images = sampling.mixing_images(task, rows, cols, cfg.mix_coarse, label, cfg.psi)
    sampling.save_grid(images, out, nrow=len(cols) + 1)
    log.info("wrote a %dx%d style-mixing figure to %s", len(rows), len(cols), out)
    return [out]


# Truncation beyond this extrapolates so far from the average style that images saturate (at
# psi=1e30 every pixel is -1 or 1), and past float32's range it overflows.
PSI_LIMIT = 2.0

# Which mode each option serves: (option, the modes it applies to, how to get there). The one rule
# of ganarena-generate (README "Bad input"): an option set away from its default in a mode it does
# not apply to is refused, naming the mode, instead of being ignored.
APPLIES = (
    ("psi", ("grid", "folder", "interpolate", "mix"), "sampling from noise (drop translate=)"),
    ("label", ("grid", "folder", "interpolate", "mix"), "sampling from noise (drop translate=)"),
    (
        "seed",
        ("grid", "folder", "interpolate"),
        "a grid, folder or interpolation (a mixing "
        "figure takes its seeds from mix_rows/mix_cols; a translation draws nothing)",
    ),
    ("n", ("grid", "folder"), "a grid or format=folder (an interpolation has steps= frames)"),
    ("nrow", ("grid",), "a grid (format=grid)"),
    ("batch_size", ("grid", "folder", "translate"), "a grid, format=folder or translate="),
    ("space", ("interpolate",), "interpolate=true"),
    ("mix_rows", ("mix",), "mix=true"),
    ("mix_cols", ("mix",), "mix=true"),
    ("mix_coarse", ("mix",), "mix=true"),
    ("steps", ("interpolate",), "interpolate=true"),
    ("frame_ms", ("interpolate",), "interpolate=true"),
    ("direction", ("translate",), "translate=<folder>"),
)


WRITES = {
    "grid": "one grid image",
    "folder": "one PNG per image into a folder",
    "interpolate": "an interpolation strip and its GIF",
    "mix": "one style-mixing figure",
    "translate": "one translated PNG per input image",
}


def mode_of(cfg: DictConfig) -> str:
    """translate, mix, interpolate, folder or grid: what this ganarena-generate call writes."""
    if cfg.get("translate") is not None:
        return "translate"
    if cfg.mix:
        return "mix"
    return "interpolate" if cfg.interpolate else cfg.format


def _refuse_inapplicable(cfg: DictConfig) -> None:
    from ganarena.run.defaults import MISSING, conf_default

    mode = mode_of(cfg)
    for key, modes, where in APPLIES:
        default = conf_default(key, config="generate")
        value = cfg.get(key)
        if mode in modes or default is MISSING:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        if value != default:
            raise ConfigError(
                f"{key}={value} does not apply to {mode} mode (this call writes {WRITES[mode]}), "
                f"so it would be ignored. Drop {key}=, or use it with {where}."
            )


def _psi_default() -> Any:
    from ganarena.run.defaults import example

    return example("psi", 1.0, config="generate")


def _check_style_options(cfg: DictConfig) -> None:
    """psi / space / mix / mix_* values (before the checkpoint is loaded)."""
    psi = cfg.get("psi", 1.0)
    if isinstance(psi, bool) or not isinstance(psi, Real) or not math.isfinite(psi):
        raise ConfigError(
            f"psi must be a number (1: no truncation, 0.7: the customary truncation), got "
            f"{psi!r}. Fix it on the command line, e.g. psi={_psi_default()} (the default)."
        )
    if abs(psi) > PSI_LIMIT:
        raise ConfigError(
            f"psi={psi} is outside [-{PSI_LIMIT:g}, {PSI_LIMIT:g}]: psi scales each style's "
            "distance from the average style (1: as trained, 0.7: the customary truncation, 0: "
            "the average image, above 1: extrapolation), and this far out the images saturate "
            f"to flat black and white. Use a psi in that range, e.g. psi={_psi_default()} (the "
            "default) or psi=0.7."
        )
    if cfg.space not in ("z", "w"):
        raise ConfigError(f"space must be z or w (the interpolation space), got {cfg.space!r}.")
    if not isinstance(cfg.mix, bool):
        raise ConfigError(
            f"mix must be true or false, got {cfg.mix!r}: true writes a style-mixing figure. Fix "
            "it on the command line, e.g. mix=false (the default)."
        )
    if cfg.mix and (cfg.interpolate or cfg.format == "folder" or cfg.get("translate") is not None):
        raise ConfigError(
            "mix=true writes one style-mixing figure (a PNG) to out=; drop interpolate=true, "
            "format=folder and translate=."
        )
    if cfg.mix:
        for key in ("mix_rows", "mix_cols"):
            seeds = cfg.get(key)
            if (
                not OmegaConf.is_list(seeds)
                or not seeds
                or not all(
                    isinstance(s, Integral) and not isinstance(s, bool) and s >= 0 for s in seeds
                )
            ):
                raise ConfigError(
                    f"{key} must be a non-empty list of seeds (integers >= 0), got {seeds!r}; "
                    f"e.g. {key}=[1,2,3]."
                )
        if cfg.mix_coarse is not None:
            check_int(
                "mix_coarse",
                cfg.mix_coarse,
                0,
                "Fix it on the command line, e.g. "
                "mix_coarse=null (the default: half of the styles from the row seed).",
            )


def _check_style_based(task: Any, cfg: DictConfig, train_cfg: DictConfig) -> None:
    """Refuse the style-based options for a generator without styles."""
    asked = [
        what
        for what, on in (
            (f"psi={cfg.psi} (truncation)", cfg.psi != 1),
            ("space=w (interpolation in W)", cfg.space == "w"),
            ("mix=true (style mixing)", cfg.mix),
        )
        if on
    ]
    if asked and not task.style_based:
        model = OmegaConf.select(train_cfg, "model.name", default=None) or "unknown"
        raise ConfigError(
            f"{' and '.join(asked)} {'need' if len(asked) > 1 else 'needs'} a style-based "
            "generator, one that maps z to per-layer "
            f"styles w before synthesising (model=stylegan2), but the checkpoint '{cfg.ckpt_path}' "
            f"holds model={model}, which maps z to images directly. Drop psi=, space=w and "
            "mix=true, or use a checkpoint of an experiment=stylegan2 (model=stylegan2) run."
        )


def _translated_names(files: list[Path], root: Path) -> list[Path]:
    """Output paths (relative) mirroring the inputs under `root`, as .png; inputs that would
    share a name (a.jpg and a.png) keep their suffix in it (a.jpg.png)."""
    rel = [f.relative_to(root) for f in files]
    plain = [r.with_suffix(".png") for r in rel]
    taken = {p: plain.count(p) for p in plain}
    return [
        p if taken[p] == 1 else r.with_name(r.name + ".png")
        for r, p in zip(rel, plain, strict=True)
    ]


def check_translate(cfg: DictConfig) -> list[Path]:
    """The input images of translate= mode, after checking direction, the input folder and out=
    (before the checkpoint is loaded)."""
    from ganarena.evaluate import list_image_folder

    src, out = Path(cfg.translate).expanduser(), Path(cfg.out).expanduser()
    if cfg.direction not in ("ab", "ba"):
        raise ConfigError(
            f"direction must be ab (domain A to B) or ba (B to A), got {cfg.direction!r}."
        )
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        raise ConfigError(
            f"translate= writes one PNG per input image into a folder, but out={out} looks like "
            "an image file. Pass a folder name, e.g. out=translated."
        )
    files, _ = list_image_folder(
        src, "translate", "resize them, or translate each size from a folder of its own"
    )  # a missing/empty/unreadable folder: DataError
    a, b = src.resolve(), out.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise ConfigError(
            f"out={out} and translate={src} overlap; the translations would mix with (or replace) "
            "their inputs. Pass an out= folder outside the input folder."
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out} is an existing file, not a folder. Pass another out=.")
    existing = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
    if existing and not cfg.overwrite:
        raise ConfigError(
            f"The folder {out} already holds {len(existing)} files; refusing to overwrite them. "
            "Pass another out=, or overwrite=true to replace translations written before."
        )
    foreign = [p for p in existing if p.suffix.lower() != ".png"]
    if foreign:
        raise ConfigError(
            f"The folder {out} holds files ganarena-generate did not write (e.g. {foreign[0].name}); "
            "refusing to delete them even with overwrite=true. Pass another out=."
        )
    return files


def write_translations(task: Any, cfg: DictConfig, train_cfg: DictConfig) -> list[Path]:
    """Translate every image under cfg.translate (recursively) with the checkpoint's translator
    for cfg.direction, resized to the model's size; one PNG per input, mirroring the input names
    under the out folder."""
    import torch.nn.functional as F

    from ganarena.evaluate import load_image_folder
    from ganarena.gan import sampling

    files = check_translate(cfg)
    src, out = Path(cfg.translate).expanduser(), Path(cfg.out).expanduser()
    size, channels = int(train_cfg.dataset.image_size), int(train_cfg.dataset.channels)
    images = load_image_folder(src, channels, "translate")
    names = _translated_names(files, src)
    batch_size = _int(cfg, "batch_size", 1)
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float() / 127.5 - 1
        if x.shape[-2:] != (size, size):  # as the datamodules resize their images
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
            x = x.clamp(-1, 1)
        for i, image in enumerate(task.translate(x, cfg.direction)):
            path = tmp / names[start + i]
            path.parent.mkdir(parents=True, exist_ok=True)
            sampling.to_pil(image).save(path)
    if out.exists():
        shutil.rmtree(out)  # empty, or only PNGs (checked above)
    tmp.rename(out)
    log.info(
        "translated %d images (%s, %dx%d) from %s into %s/",
        len(images), cfg.direction, size, size, src, out,
    )  # fmt: skip
    return [out]


def check_options(cfg: DictConfig) -> None:
    """Every option checked before the checkpoint is loaded (and before torch is)."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or cfg.ckpt_path is None:
        raise ConfigError(
            "ganarena-generate needs a checkpoint: pass "
            "ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt."
        )
    if cfg.format not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {cfg.format!r}.")
    for key in ("interpolate", "overwrite"):
        if not isinstance(cfg.get(key), bool):
            raise ConfigError(
                f"{key} must be true or false, got {cfg.get(key)!r}. Fix it on the command line, "
                f"e.g. {key}=false (the default)."
            )
    if cfg.interpolate and cfg.format == "folder":
        raise ConfigError(
            "interpolate=true writes a PNG strip and an animated GIF, not a folder; drop "
            "format=folder (out= names the strip, e.g. out=interp.png)."
        )
    translate = cfg.get("translate")
    if translate is not None and (cfg.interpolate or cfg.format == "folder"):
        raise ConfigError(
            "translate= writes one translated PNG per input into the out= folder; drop "
            "interpolate=true / format=folder."
        )
    _check_style_options(cfg)
    _refuse_inapplicable(cfg)
    _int(cfg, "seed", 0)
    for key, low in (("n", 1), ("nrow", 1), ("batch_size", 1), ("steps", 2), ("frame_ms", 1)):
        _int(cfg, key, low)  # all checked before the checkpoint is loaded
    device = str(cfg.get("device", "cpu"))
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ConfigError(f"device must be cpu or cuda (or cuda:N), got {device!r}.")
    existing_checkpoint(cfg.ckpt_path)  # named before torch is loaded


def _device(cfg: DictConfig) -> str:
    """cfg.device, refused when CUDA (or that CUDA device) is not there."""
    import torch

    device = str(cfg.get("device", "cpu"))
    kind, _, index = device.partition(":")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device} was asked for but CUDA is not available; use device=cpu."
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device}: there are only {torch.cuda.device_count()} CUDA device(s); "
            "use device=cuda (the first) or another index."
        )
    return device


def generate(cfg: DictConfig) -> list[Path]:
    """Write the images `cfg` asks for; returns the paths written."""
    check_options(cfg)
    device = _device(cfg)
    translate = cfg.get("translate")
    if translate is not None:
        check_translate(cfg)  # bad folders fail before the checkpoint is read
    from ganarena.tasks import load_task

    task, train_cfg = load_task(cfg.ckpt_path)
    if translate is not None:
        if task.kind != "translation":
            raise ConfigError(
                f"translate= needs a translation checkpoint (e.g. of task=cyclegan), but "
                f"'{cfg.ckpt_path}' holds a {task.kind} task, which draws images from noise and "
                "takes no input images. Drop translate= (and direction=) to sample from it."
            )
        paths = write_translations(task.to(device), cfg, train_cfg)
        for p in paths:
            print(p, flush=True)
        return paths
    if task.kind != "generative":
        raise ConfigError(
            f"The checkpoint '{cfg.ckpt_path}' holds a {task.kind} task, which maps images "
            "instead of sampling them from noise. Translate a folder with it: translate=<folder "
            "of images> direction=ab (or ba) out=<new folder>; or use a checkpoint of a GAN run."
        )
    task = task.to(device)
    label = _check_label(cfg.label, task.num_classes, cfg.ckpt_path)
    _check_style_based(task, cfg, train_cfg)
    _check_room(task, cfg)
    try:
        if cfg.mix:
            paths = write_mixing(task, cfg, label)
        elif cfg.interpolate:
            paths = write_interpolation(task, cfg, label)
        elif cfg.format == "folder":
            paths = write_folder(task, cfg, label)
        else:
            paths = write_grid(task, cfg, label)
    except OSError as e:  # a full disk, or a place that turned out not to be writable
        raise ConfigError(
            f"Could not write out={cfg.out} ({e.strerror or e}). Pass an out= in a writable "
            "folder with free space; nothing was left behind."
        ) from None
    for p in paths:
        print(p, flush=True)
    return paths


@hydra.main(version_base="1.3", config_path="pkg://ganarena.conf", config_name="generate")
def main(cfg: DictConfig) -> Any:
    result = run_cli(generate, cfg, "ganarena-generate")
    return None if isinstance(result, float) and math.isinf(result) else result


if __name__ == "__main__":
    main()
