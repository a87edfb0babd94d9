"""ganarena-eval: score a checkpoint or two image folders; ONE JSON object on stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ganarena.cli import run_cli
from ganarena.errors import ConfigError, DataError
from ganarena.run.config import validate_eval
from ganarena.run.files import IMAGE_EXTENSIONS, atomic_write, existing_checkpoint

if TYPE_CHECKING:
    import torch

log = logging.getLogger("ganarena")


def list_image_folder(
    folder: str | Path, key: str, mixed: str = "resize them, or score each size separately"
) -> tuple[list[Path], set[str]]:
    """The image files under `folder` (recursively, sorted) and their PIL modes; raises DataError
    for a missing or empty folder, unreadable files or mixed image sizes (headers only: fast)."""
    from PIL import Image

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"{key}={folder} is not a folder. Pass {key}=<folder of images>.")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise DataError(
            f"No images in {key}={folder} (searched recursively for {', '.join(IMAGE_EXTENSIONS)}). "
            f"Point {key} at a folder of generated/real images, e.g. PNGs written by ganarena-generate."
        )
    sizes: dict[tuple[int, int], list[Path]] = {}
    modes: set[str] = set()
    for p in files:
        try:
            with Image.open(p) as im:
                sizes.setdefault(im.size, []).append(p)
                modes.add(im.mode)
        except OSError as e:
            raise DataError(
                f"{p} (in {key}) is not a readable image ({e}). Remove or replace it."
            ) from None
    if len(sizes) > 1:
        desc = "; ".join(
            f"{w}x{h}: {len(v)} files, e.g. {v[0].name}" for (w, h), v in sizes.items()
        )
        raise DataError(
            f"The images in {key}={folder} have {len(sizes)} different sizes ({desc}). All images "
            f"of a set must have one size: {mixed}."
        )
    return files, modes


# PIL modes, as a log line names them; those with one channel are read as greyscale.
MODE_NAMES = {
    "1": "1-bit black and white", "L": "8-bit greyscale", "LA": "greyscale + alpha",
    "I;16": "16-bit greyscale", "I;16B": "16-bit greyscale", "I;16L": "16-bit greyscale",
    "I": "integer greyscale", "F": "float greyscale", "P": "palette colour", "RGB": "RGB",
    "RGBA": "RGB + alpha", "CMYK": "CMYK", "YCbCr": "YCbCr",
}  # fmt: skip
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def describe_modes(modes: set[str]) -> str:
    """What the files are, e.g. "RGB" or "16-bit greyscale (PNG mode I;16)"."""
    return ", ".join(
        MODE_NAMES.get(m, m) + (f" (PNG mode {m})" if m.startswith("I") else "")
        for m in sorted(modes)
    )


def load_image_folder(folder: str | Path, channels: int | None, key: str) -> torch.Tensor:
    """All images under `folder` (recursively, sorted) as uint8 (N, C, H, W).

    channels 1/3 converts every image to grayscale/RGB; None keeps grayscale when all images are.
    16-bit greyscale is scaled to 8 bits (PIL's own conversion clips it to two levels).
    """
    import numpy as np
    import torch
    from PIL import Image

    from ganarena.data.datasets import to_8bit

    files, modes = list_image_folder(folder, key)
    if channels is None:
        channels = 1 if modes <= GREY_MODES else 3
    mode = "L" if channels == 1 else "RGB"
    out = []
    for p in files:
        with Image.open(p) as im:
            a = np.asarray(to_8bit(im).convert(mode), dtype=np.uint8)
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    read_as = "greyscale, 1 channel" if channels == 1 else "RGB, 3 channels"
    how = "" if modes == {mode} else (
        " (scaled to 8 bits)" if modes <= {"I;16", "I;16B", "I;16L", "I"} and channels == 1
        else " (converted)"
    )  # fmt: skip
    log.info(
        "%s: %d images of %dx%d, %s; scored as %s%s",
        key, len(files), out[0].shape[2], out[0].shape[1], describe_modes(modes), read_as, how,
    )  # fmt: skip
    return torch.from_numpy(np.stack(out))


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _dataset_cfg(cfg: DictConfig, train_cfg: DictConfig) -> DictConfig:
    """The checkpoint's dataset (plus any dataset.x=... overrides) unless dataset= was given."""
    overrides = _overrides()
    if any(o.startswith("dataset=") for o in overrides) or "dataset" not in train_cfg:
        return cfg.dataset
    ds = OmegaConf.create(OmegaConf.to_container(train_cfg.dataset, resolve=True))
    ds.pop("resolved", None)  # recorded by ganarena-train, not a datamodule argument
    dots = [o for o in overrides if o.startswith("dataset.")]
    return OmegaConf.merge(ds, OmegaConf.from_dotlist([o[len("dataset.") :] for o in dots]))


def _datamodule(ds_cfg: DictConfig):
    from hydra.utils import instantiate

    from ganarena.data.protocol import require_source

    dm = require_source(instantiate(ds_cfg), "dataset")
    dm.setup("fit")
    return dm


def _score_checkpoint(cfg: DictConfig) -> tuple[dict, Path]:
    import torch

    from ganarena.metrics import build_evaluator
    from ganarena.tasks import load_task

    task, train_cfg = load_task(cfg.ckpt_path)
    dm = _datamodule(_dataset_cfg(cfg, train_cfg))
    if dm.serves != task.kind:
        raise ConfigError(
            f"The checkpoint '{cfg.ckpt_path}' holds a {task.kind} task, but dataset "
            f"'{dm.resolved}' serves {dm.serves} tasks, so it cannot score it. Drop "
            "dataset= to score against the checkpoint's own data, or pass a dataset of its kind."
        )
    evaluator = build_evaluator(cfg.eval, dm, cfg.eval.cache_dir)  # by the data's scored_as
    if torch.cuda.is_available():
        task = task.to("cuda")
    task.use_ema(cfg.ema)
    scores = evaluator.score_module(task)
    inputs = {
        "ckpt_path": str(cfg.ckpt_path),
        "step": task.g_step,
        "generator": "ema" if task.samples_from_ema else "trained",
        "model": OmegaConf.select(train_cfg, "model.name"),
        "loss": OmegaConf.select(train_cfg, "loss.name"),
    }
    return {"scores": scores, "eval": evaluator.settings, "inputs": inputs}, Path(
        cfg.ckpt_path
    ).parent


def _check_folder_sizes(cfg: DictConfig, dm: Any) -> None:
    """DataError when real= or fake= images are not the size the dataset's classifier takes."""
    from PIL import Image

    for key in ("real", "fake"):
        files, _ = list_image_folder(cfg[key], key)
        with Image.open(files[0]) as im:
            w, h = im.size
        if (w, h) != (dm.image_size, dm.image_size):
            raise DataError(
                f"The {key} images are {w}x{h}, but the domain classifier of dataset "
                f"'{dm.resolved}' takes {dm.image_size}x{dm.image_size}: pass the dataset= these "
                "images belong to (or its dataset.image_size=), or use eval.backbone=inception."
            )


# eval.* settings that ganarena-eval does not use in a mode: (key, modes it does not apply
# to, why). The one rule (README "Bad input"): set away from its default there, an option is
# refused, naming the mode, instead of being ignored.
NOT_APPLIED = (
    ("eval.every_n_steps", ("checkpoint", "folder"),
     "it sets how often ganarena-train evaluates during training"),
    ("eval.n_samples", ("folder",), "every image of fake= is scored"),
    ("eval.n_real", ("folder",), "every image of real= is the reference"),
    ("eval.per_class_fid", ("folder",), "the fake= images carry no class labels"),
)  # fmt: skip


def refuse_inapplicable(cfg: DictConfig) -> None:
    """ConfigError for an option set (away from its default) in a mode that does not use it."""
    from ganarena.run.defaults import MISSING, conf_default

    folders = cfg.get("ckpt_path") is None
    mode = "folder" if folders else "checkpoint"
    what = "scores the image folders real= and fake=" if folders else "scores a checkpoint"
    if folders and cfg.ema is not True:
        raise ConfigError(
            "ema=false chooses which generator of a checkpoint is scored, but real= and fake= "
            "score image folders, which have no generator, so it would be ignored. Drop ema=, or "
            "score a checkpoint: ganarena-eval ckpt_path=... ema=false."
        )
    for key, modes, why in NOT_APPLIED:
        # conf/eval/<backbone>.yaml's value, else that of the eval= which evaluate.yaml picks
        default = conf_default(key, str(cfg.eval.get("backbone")), config="evaluate")
        value = OmegaConf.select(cfg, key, default=default)
        if mode in modes and default is not MISSING and value != default:
            raise ConfigError(
                f"{key}={value} does not apply to {mode} mode (this call {what}): {why}, so it "
                f"would be ignored. Drop {key}= (its default is {default})."
            )
    given = [o.split("=", 1)[0] for o in _overrides() if o.startswith("dataset")]
    if folders and given and cfg.eval.backbone != "domain":
        raise ConfigError(
            f"{given[0]}= does not apply to folder mode with eval.backbone={cfg.eval.backbone}: "
            "the dataset only names the domain classifier (eval.backbone=domain); real= is the "
            "reference, so it would be ignored. Drop dataset=, or score with eval=domain."
        )


def _score_folders(cfg: DictConfig) -> tuple[dict, Path]:
    for key in ("real", "fake"):  # bad folders fail before any slow backbone setup
        list_image_folder(cfg[key], key)
    if Path(str(cfg.real)).resolve() == Path(str(cfg.fake)).resolve():
        raise ConfigError(
            f"real= and fake= are the same folder ({cfg.real}), so every score would say the "
            "images match themselves (FID 0). Pass generated images as fake=, e.g. from "
            "ganarena-generate ckpt_path=... format=folder out=fake_images."
        )
    import torch

    from ganarena.metrics import build_backbone
    from ganarena.metrics.evaluator import Evaluator, default_device, reference_stats

    dm = _datamodule(cfg.dataset) if cfg.eval.backbone == "domain" else None
    if dm is not None:  # sizes checked from the headers, before the classifier is trained
        _check_folder_sizes(cfg, dm)
    backbone = build_backbone(cfg.eval, dm, cfg.eval.cache_dir)
    shape = backbone.input_shape
    channels = shape[0] if shape is not None else None
    real = load_image_folder(cfg.real, channels, "real")
    fake = load_image_folder(cfg.fake, channels if channels else real.shape[1], "fake")
    for key, x in (("real", real), ("fake", fake)):
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise DataError(
                f"The {key} images are {x.shape[-1]}x{x.shape[-2]} with {x.shape[1]} channel(s), but "
                f"the domain classifier of dataset '{dm.resolved}' takes {shape[2]}x{shape[1]} with "
                f"{shape[0]}: pass the dataset= these images belong to, or use eval.backbone=inception."
            )
    batch_size = int(cfg.eval.batch_size)
    ref = reference_stats(backbone, real, str(cfg.real), batch_size, device=default_device())
    info = (
        {"dataset": dm.resolved, "dataset_fingerprint": dm.fingerprint()} if dm is not None else {}
    )
    evaluator = Evaluator(backbone, cfg.eval, ref, info).to(default_device())
    scores = evaluator.score_images(fake)
    inputs = {"real": str(cfg.real), "fake": str(cfg.fake)}
    result = {"scores": scores, "eval": evaluator.settings, "inputs": inputs}
    if real.shape == fake.shape and torch.equal(real, fake):
        result["warning"] = (
            "the fake images are identical to the real ones: the scores measure a copy (FID 0), "
            "not a generator"
        )
        log.warning("%s", result["warning"])
    return result, Path(cfg.fake)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score `ckpt_path` or the `real`/`fake` folders; print and save the JSON result."""
    if cfg.eval.backbone not in ("domain", "inception"):
        raise ConfigError(
            f"ganarena-eval needs a backbone, got eval.backbone={cfg.eval.backbone}. Use "
            "eval=domain (offline, trained on the dataset's labels) or eval=inception."
        )
    validate_eval(cfg)
    if not isinstance(cfg.ema, bool):
        raise ConfigError(
            f"ema must be true or false, got ema={cfg.ema!r}. ema=true scores a checkpoint's EMA "
            "generator (what training evaluated), ema=false the trained generator itself."
        )
    folders = cfg.real is not None or cfg.fake is not None
    if (cfg.ckpt_path is None) == (not folders) or (
        folders and (cfg.real is None or cfg.fake is None)
    ):
        raise ConfigError(
            "Pass either ckpt_path=<checkpoint> or both real=<folder> and fake=<folder>, e.g. "
            "ganarena-eval ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt."
        )
    refuse_inapplicable(cfg)
    if cfg.ckpt_path is not None:
        existing_checkpoint(cfg.ckpt_path)  # named before torch is loaded
    # Anything printed by libraries goes to stderr: stdout carries only the JSON object.
    with contextlib.redirect_stdout(sys.stderr):
        result, out_dir = (
            _score_checkpoint(cfg) if cfg.ckpt_path is not None else _score_folders(cfg)
        )
        stamp = datetime.now()
        result["created"] = stamp.isoformat(timespec="seconds")
        path = out_dir / f"eval_{stamp:%Y-%m-%d_%H-%M-%S-%f}.json"
        result["file"] = str(path)
        text = json.dumps(result, indent=2)
        try:
            atomic_write(path, lambda p: p.write_text(text + "\n"))
            log.info("scores written to %s", path)
        except OSError as e:  # e.g. a read-only folder: stdout still carries the result
            log.warning("could not write %s (%s)", path, e)
    print(text, flush=True)
    return result


@hydra.main(version_base="1.3", config_path="pkg://ganarena.conf", config_name="evaluate")
def main(cfg: DictConfig) -> float | None:
    result = run_cli(evaluate, cfg, "ganarena-eval")
    from ganarena.metrics.registry import PRIMARY

    return result["scores"][PRIMARY.name] if isinstance(result, dict) else result


if __name__ == "__main__":
    main()
