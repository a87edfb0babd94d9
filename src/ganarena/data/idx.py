"""Strict reader for IDX files (the MNIST format), plain or gzip-compressed."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganarena.errors import DataError

# Magic = 0x00 0x00 <type> <ndim>; type 0x08 is unsigned byte, the only type MNIST-style sets use.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path, kind: str = "images", key: str = "dataset.images") -> Tensor:
    """Read an IDX ubyte file: kind "images" -> uint8 (N, H, W), "labels" -> uint8 (N,).

    `key` is the config key named in error messages. Raises DataError on any malformed input.
    """
    expected = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}[kind]
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"IDX {kind} file not found: {path} (from {key}). Set {key} to an existing IDX file such as train-images-idx3-ubyte or its .gz."
        )
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        # Detected by content, not extension: files are often renamed or pre-extracted.
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:
            raise DataError(
                f"{path} ({key}) is a corrupt or truncated gzip file ({err}). Re-download or re-copy it."
            ) from err
    if len(data) < 4:
        raise DataError(
            f"{path} ({key}) is {len(data)} bytes long, too short for an IDX header. Re-download or re-copy it."
        )
    magic = int.from_bytes(data[:4], "big")
    if magic != expected:
        hint = ""
        if magic == {"images": LABELS_MAGIC, "labels": IMAGES_MAGIC}[kind]:
            hint = (
                " It looks like an IDX "
                + ("labels" if kind == "images" else "images")
                + " file: are dataset.images and dataset.labels swapped?"
            )
        raise DataError(
            f"{path} ({key}) is not an IDX {kind} file: magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {expected & 0xFF}-D).{hint} Point {key} at an IDX {kind} file."
        )
    ndim = expected & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path} ({key}) is truncated inside its header ({len(data)} bytes, header needs {header}). Re-download or re-copy it."
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    want = int(np.prod(dims))
    got = len(data) - header
    if got != want:
        what = "truncated" if got < want else "longer than its header says"
        raise DataError(
            f"{path} ({key}) is {what}: header dims {'x'.join(map(str, dims))} need {want} payload bytes, "
            f"found {got}. Re-download or re-copy the file."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def read_idx_pair(images, labels=None) -> tuple[Tensor, Tensor | None]:
    """Read an IDX images file and an optional labels file, checking that their counts match."""
    x = read_idx(images, "images", "dataset.images")
    if labels is None:
        return x, None
    y = read_idx(labels, "labels", "dataset.labels")
    if len(x) != len(y):
        raise DataError(
            f"{images} has {len(x)} images but {labels} has {len(y)} labels. "
            f"Point dataset.images and dataset.labels at files of the same split, or set dataset.labels=null."
        )
    return x, y.long()
