"""One home for how ganarena writes files and reads images: atomic writes, the image suffixes,
and the [-1, 1] -> uint8 conversion that every saved or scored image goes through."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganarena.errors import CheckpointError, DivergedError

if TYPE_CHECKING:  # torch is imported where it is used: config-only commands never load it
    from torch import Tensor

# Image files ganarena reads (datasets, ganarena-eval folders) and writes (ganarena-generate).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def atomic_write(path: str | Path, write: Callable[[Path], Any], fsync: bool = False) -> Path:
    """Call `write(tmp)` on a hidden temp file beside `path`, then rename it over `path`.

    A kill mid-write leaves the previous file (or none), never half a file. The temp name keeps
    the suffix (some writers pick the format from it) and holds the pid (parallel writers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temp files atomic_write left in `folder` when its process was killed mid-write
    (kill -9, OOM): `.<name>.<pid>.tmp<suffix>` of a pid that no longer runs. Returns them."""
    removed = []
    for tmp in Path(folder).glob(".*.*.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[0].rsplit(".", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_json(path: str | Path, data: Any) -> Path:
    """JSON (NaN allowed), written atomically."""
    text = json.dumps(data, indent=2, allow_nan=True) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


@contextlib.contextmanager
def cache_lock(path: str | Path):
    """Hold `<path>.lock` across processes while a cache entry is read or computed: of parallel
    sweep jobs (or test workers) that need the same domain classifier or reference statistics,
    the first computes it and the others wait, then reuse it. No lock (and no waiting) where the
    folder cannot be written."""
    from filelock import FileLock

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def save_torch(obj: Any, path: str | Path, fsync: bool = False) -> Path:
    """torch.save, written atomically."""
    import torch

    return atomic_write(path, lambda p: torch.save(obj, p), fsync=fsync)


def to_uint8(x: Tensor) -> Tensor:
    """Images in [-1, 1] -> uint8 [0, 255], rounded exactly as torchvision.utils.save_image does
    (so scoring tensors in memory and scoring the saved PNGs agree). uint8 input is returned as is."""
    import torch

    if x.dtype == torch.uint8:
        return x
    if not torch.isfinite(x).all():
        raise DivergedError(
            "The generated images contain NaN or inf, so they cannot be scored or saved: the "
            "generator has diverged. Lower the learning rates or change the loss, and resume from "
            "an earlier checkpoint."
        )
    x = (x.float().clamp(-1, 1) + 1) / 2
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def existing_checkpoint(path: str | Path, option: str = "ckpt_path") -> Path:
    """`path` if it is a file, else CheckpointError naming `option` and what the path is (cheap:
    checked before torch is loaded)."""
    path = Path(path)
    if path.is_file():
        return path
    what = (
        f"'{path}' is a folder, not a checkpoint file"
        if path.is_dir()
        else f"Checkpoint not found: '{path}'"
    )
    hint = " (its checkpoints/last.ckpt?)" if (path / "checkpoints" / "last.ckpt").is_file() else ""
    raise CheckpointError(
        f"{option}={path}: {what}{hint}. Pass {option}=<run folder>/checkpoints/last.ckpt "
        "(an existing file written by ganarena-train)."
    )


def nearest_existing(path: str | Path) -> Path:
    """`path` made absolute, or its nearest ancestor that exists: where a write would land."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def writable_dir(folder: Path) -> bool:
    """True when `folder` is a folder this process may create files in."""
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
