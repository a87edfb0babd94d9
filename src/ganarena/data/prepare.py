"""Pack an image folder once, so that training reads images without decoding them.

    python -m ganarena.data.prepare SRC DST --size 64 [--channels 3] [--workers 2]

Every image under SRC (recursively, as dataset=image_folder lists them; labels from first-level
subfolders when every image is in one) is decoded, resized (shorter side) and center-cropped to
`--size` exactly as dataset=image_folder does, and written to DST as one uint8 array
(DST/images.npy, N x C x S x S), with DST/labels.npy, DST/files.txt (the source files, in order)
and DST/packed.json (written last: a folder without it is incomplete). Train from it with

    ganarena-train dataset=image_folder dataset.root=DST dataset.image_size=64

(the same batches as from SRC; see data/folder.py for the format and docs/streaming.md for
the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ganarena.data.folder import (
    PACKED_FILES,
    PACKED_FORMAT,
    PACKED_IMAGES,
    PACKED_LABELS,
    PACKED_META,
    PACKED_VERSION,
    _Chunks,
    scan,
)
from ganarena.errors import DataError


def prepare(src, dst, size: int, channels: int = 3, workers: int = 0, chunk: int = 512) -> dict:
    """Pack the images under `src` into `dst` (see the module docstring); returns packed.json."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if size < 1 or channels not in (1, 3):
        raise DataError(f"--size must be >= 1 and --channels 1 or 3, got {size} and {channels}.")
    found = scan(src)
    if found.packed is not None:
        raise DataError(f"{src} is a packed folder already; give the folder of image files.")
    dst.mkdir(parents=True, exist_ok=True)
    (dst / PACKED_META).unlink(missing_ok=True)  # incomplete until written again, last
    n, t0 = len(found), time.perf_counter()
    every = torch.arange(n)
    reader = found.reader(every, size, channels)
    partial = dst / f"{PACKED_IMAGES}.partial"
    out = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.uint8, shape=(n, channels, size, size)
    )
    starts = list(range(0, n, chunk))
    batches = DataLoader(
        _Chunks(reader, chunk), sampler=starts, batch_size=None, num_workers=workers,
        generator=torch.Generator(),
    )  # fmt: skip
    for start, images in zip(starts, batches, strict=True):
        out[start : start + len(images)] = images.numpy()
    out.flush()
    del out
    os.replace(partial, dst / PACKED_IMAGES)
    if found.labels is not None:
        np.save(dst / PACKED_LABELS, found.labels.numpy().astype(np.int64))
    else:
        (dst / PACKED_LABELS).unlink(missing_ok=True)
    (dst / PACKED_FILES).write_text("".join(f"{name}\n" for name in found.files))
    meta = {
        "format": PACKED_FORMAT,
        "version": PACKED_VERSION,
        "n": n,
        "size": size,
        "channels": channels,
        "classes": found.classes,
        "source": str(src),
        "source_fingerprint": found.fingerprint(every, size, channels),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (dst / f"{PACKED_META}.partial").write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(dst / f"{PACKED_META}.partial", dst / PACKED_META)
    seconds = time.perf_counter() - t0
    return {**meta, "seconds": round(seconds, 1), "imgs_per_s": round(n / max(seconds, 1e-9))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganarena.data.prepare",
        description="Pack a folder of images (resized, center-cropped, uint8) for fast training.",
    )
    parser.add_argument("src", help="folder of images (recursively; subfolders = classes)")
    parser.add_argument("dst", help="output folder (dataset.root for dataset=image_folder)")
    parser.add_argument("--size", type=int, required=True, help="image size in pixels")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="decoding processes"
    )
    args = parser.parse_args(argv)
    try:
        meta = prepare(args.src, args.dst, args.size, args.channels, args.workers)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = {k: meta[k] for k in ("n", "size", "channels", "seconds", "imgs_per_s")}
    print(json.dumps({"packed": str(Path(args.dst).resolve()), **shown}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
