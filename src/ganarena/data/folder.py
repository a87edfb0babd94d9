"""Image folders and packed folders, read one image at a time.

`scan(root)` lists a folder's images (recursively, in sorted order, labels from first-level
subfolders when every image is in one) or opens a packed folder that `python -m
ganarena.data.prepare` wrote. Its `reader(keep)` reads the kept images on demand, as uint8
(C, H, W) resized (shorter side) and center-cropped to the dataset's size exactly as the
in-memory image_folder decodes them, so a streamed set and the same set held in memory give the
same bits. Readers hold file names and offsets only: they pickle cheaply into DataLoader workers.

The packed format is a folder with `packed.json` (format, version, count, size, channels,
classes, source), `images.npy` (uint8 (N, C, S, S), a plain .npy file), `labels.npy` (int64 (N,),
when labelled) and `files.txt` (the source files, in order). A read is one `os.pread` of C*S*S
bytes: no decoding, no per-file open.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms import v2

from ganarena.errors import DataError
from ganarena.run.files import IMAGE_EXTENSIONS

PACKED_META, PACKED_IMAGES, PACKED_LABELS, PACKED_FILES = (
    "packed.json", "images.npy", "labels.npy", "files.txt",
)  # fmt: skip
PACKED_FORMAT, PACKED_VERSION = "ganarena-packed", 1


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit greyscale (PNG "I;16", or "I" holding 16-bit values) scaled to 8 bits; PIL's own
    convert("L") clips at 255 and leaves two grey levels. Other modes pass through."""
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img, dtype=np.float64)
    peak = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.round(values * 255.0 / peak), 0, 255).astype(np.uint8), "L")


def transform_for(size: int) -> v2.Compose:
    """PIL image -> uint8 (C, size, size): shorter side resized to `size`, then center-cropped."""
    return v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])


def decode(path: Path, transform, channels: int) -> Tensor:
    """One image file as uint8 (channels, S, S), or DataError naming the file."""
    try:
        with Image.open(path) as img:
            return transform(to_8bit(img).convert("L" if channels == 1 else "RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataError(f"Cannot read image {path} ({err}). Remove or replace the file.") from err


# as_float's 256 values as the CPU computes them. CUDA divides by a Python scalar as a multiply by
# its rounded reciprocal, which differs from the division in the last bit for 111 of the 256
# values: on an accelerator as_float looks the CPU's values up instead, so a batch converted on
# the device has the bits it has when converted on the host.
_UINT8_AS_FLOAT = torch.arange(256, dtype=torch.uint8).float() / 127.5 - 1


def as_float(x: Tensor) -> Tensor:
    """Stored images -> float32 in [-1, 1]: uint8 as x / 127.5 - 1 (0 -> -1 and 255 -> 1 exactly;
    elementwise, so a batch converted alone, on the host or on the device, has the same bits as
    the whole set converted at once); float images are returned as they are."""
    if x.dtype != torch.uint8:
        return x
    if x.device.type == "cpu":
        return x.float() / 127.5 - 1
    return _UINT8_AS_FLOAT.to(x.device)[x.int()]


class FolderImages:
    """Images read from files on demand: `uint8(indices)` (k, C, S, S), `read(indices)` as float
    in [-1, 1]. `files` are paths relative to `root` (a numpy string array: forked workers share
    it instead of copying a list of Python strings page by page)."""

    in_memory = False

    def __init__(self, root: Path, files: np.ndarray, size: int, channels: int) -> None:
        self.root, self.files, self.size, self.channels = Path(root), files, size, channels
        self.shape = (channels, size, size)
        self._transform = transform_for(size)

    def __len__(self) -> int:
        return len(self.files)

    def item(self, i: int) -> Tensor:
        return decode(self.root / str(self.files[i]), self._transform, self.channels)

    def uint8(self, indices) -> Tensor:
        return torch.stack([self.item(int(i)) for i in indices])

    def read(self, indices) -> Tensor:
        return as_float(self.uint8(indices))

    def nbytes(self) -> int:
        """Memory this reader holds (the file names), not the images."""
        return int(self.files.nbytes)


class PackedImages:
    """Images read from a packed folder's images.npy by offset (os.pread; the file is opened once
    per process, so forked DataLoader workers each open their own)."""

    in_memory = False

    def __init__(self, path: Path, offset: int, positions: np.ndarray, shape) -> None:
        self.path, self.offset, self.positions = Path(path), int(offset), positions
        self.shape = tuple(int(s) for s in shape)
        self.item_bytes = int(np.prod(self.shape))
        self._fd: tuple[int, int] | None = None  # (pid, fd)

    def __len__(self) -> int:
        return len(self.positions)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def _file(self) -> int:
        if self._fd is None or self._fd[0] != os.getpid():
            self._fd = (os.getpid(), os.open(self.path, os.O_RDONLY))
        return self._fd[1]

    def uint8(self, indices) -> Tensor:
        fd, size = self._file(), self.item_bytes
        out = np.empty((len(indices), size), dtype=np.uint8)
        for row, i in enumerate(indices):
            data = os.pread(fd, size, self.offset + int(self.positions[int(i)]) * size)
            if len(data) != size:
                raise DataError(
                    f"The packed file {self.path} ends early (image {int(self.positions[int(i)])}): "
                    "it is truncated. Prepare it again with python -m ganarena.data.prepare."
                )
            out[row] = np.frombuffer(data, dtype=np.uint8)
        return torch.from_numpy(out).view(len(indices), *self.shape)

    def read(self, indices) -> Tensor:
        return as_float(self.uint8(indices))

    def nbytes(self) -> int:
        return int(self.positions.nbytes)


class ReaderView:
    """A streamed set seen as a read-only float tensor: len(), shape (N, C, H, W), dtype and
    view[indices] (those images decoded, float in [-1, 1]); what reference() gives for a
    streamed set, for code that draws a few images from it (sample-grid inputs)."""

    dtype = torch.float32

    def __init__(self, reader) -> None:
        self.reader = reader
        self.shape = torch.Size((len(reader), *reader.shape))

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, idx) -> Tensor:
        if isinstance(idx, int):
            return self.reader.read([idx])[0]
        if isinstance(idx, slice):
            return self.reader.read(range(*idx.indices(len(self.reader))))
        return self.reader.read(torch.as_tensor(idx).reshape(-1).tolist())


def npy_offset(path: Path) -> tuple[int, tuple[int, ...]]:
    """(byte offset of the data, shape) of a uint8 C-order .npy file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = header(f)
        if dtype != np.uint8 or fortran:
            raise DataError(f"{path} is not a uint8 C-order array (dtype {dtype}).")
        return f.tell(), tuple(shape)


@dataclass
class FolderScan:
    """The images under `root`: `files` (relative paths, sorted) or, for a packed folder, `packed`
    (its packed.json) with the packed source's files; `labels` and `classes` from subfolders."""

    root: Path
    files: np.ndarray
    labels: Tensor | None
    classes: list[str] | None
    packed: dict | None = None

    def __len__(self) -> int:
        return len(self.files)

    def reader(self, keep: Tensor, size: int, channels: int) -> FolderImages | PackedImages:
        """A reader of the images at `keep` (indices into this scan), in that order."""
        keep_np = keep.numpy()
        if self.packed is None:
            return FolderImages(self.root, self.files[keep_np], size, channels)
        self.check_packed(size, channels)
        offset, shape = npy_offset(self.root / PACKED_IMAGES)
        return PackedImages(self.root / PACKED_IMAGES, offset, keep_np.astype(np.int64), shape[1:])

    def check_packed(self, size: int, channels: int) -> None:
        meta = self.packed
        if (meta["size"], meta["channels"]) != (size, channels):
            raise DataError(
                f"The packed folder {self.root} holds {meta['channels']}-channel images of "
                f"{meta['size']} px, but the dataset asks for channels={channels} at "
                f"image_size={size}. Set dataset.image_size={meta['size']} "
                f"dataset.channels={meta['channels']}, or prepare it again: python -m "
                f"ganarena.data.prepare {meta.get('source', 'SRC')} DST --size {size} "
                f"--channels {channels}."
            )

    def fingerprint(self, keep: Tensor, size: int, channels: int) -> str:
        """sha256 of what identifies the kept images without decoding them: for a folder each
        file's relative path, size and modification time (a copied or touched file changes it);
        for a packed folder its packed.json, the data file's size and time, and the kept indices.
        Then the image size, channels and labels."""
        h = hashlib.sha256(f"folder-v1 {size} {channels} {len(keep)}".encode())
        if self.packed is None:
            for name in self.files[keep.numpy()]:
                st = os.stat(self.root / str(name))
                h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            st = os.stat(self.root / PACKED_IMAGES)
            h.update(json.dumps(self.packed, sort_keys=True).encode())
            h.update(f"{st.st_size} {st.st_mtime_ns}".encode())
            h.update(keep.numpy().astype(np.int64).tobytes())
        labels = self.labels
        h.update(b"none" if labels is None else labels[keep].numpy().tobytes())
        return h.hexdigest()


def _labels_of(parts: list[tuple[str, ...]]) -> tuple[Tensor | None, list[str] | None]:
    if not parts or not all(len(x) > 1 for x in parts):
        return None, None
    classes = sorted({x[0] for x in parts})
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[x[0]] for x in parts]), classes


def image_files(root: Path) -> list[Path]:
    """Every image file under `root`, recursively, in sorted (path-part) order."""
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def scan(root: Path) -> FolderScan:
    """The images under `root` (a folder of images, or a packed folder), or DataError."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"Image folder {root} (dataset.root) {'is a file, not a folder' if root.exists() else 'does not exist'}. Set dataset.root to a folder of images."
        )
    if (root / PACKED_META).is_file():
        return open_packed(root)
    files = image_files(root)
    if not files:
        raise DataError(
            f"No images found under {root} (dataset.root), searched recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}. Point dataset.root at a folder containing such files "
            f"(or at a folder that python -m ganarena.data.prepare packed)."
        )
    parts = [p.relative_to(root).parts for p in files]
    labels, classes = _labels_of(parts)
    rel = np.array(["/".join(x) for x in parts])
    return FolderScan(root, rel, labels, classes)


def open_packed(root: Path) -> FolderScan:
    meta = json.loads((root / PACKED_META).read_text())
    if meta.get("format") != PACKED_FORMAT or meta.get("version") != PACKED_VERSION:
        raise DataError(
            f"{root / PACKED_META} is not a ganarena packed folder of version {PACKED_VERSION} "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r}). Prepare it again "
            "with python -m ganarena.data.prepare SRC DST --size N."
        )
    _, shape = npy_offset(root / PACKED_IMAGES)
    if shape[0] != meta["n"]:
        raise DataError(
            f"{root / PACKED_IMAGES} holds {shape[0]} images, packed.json says {meta['n']}: the "
            "folder is incomplete (an interrupted prepare?). Prepare it again."
        )
    labels = None
    if (root / PACKED_LABELS).is_file():
        labels = torch.from_numpy(np.load(root / PACKED_LABELS)).long()
    names = (
        (root / PACKED_FILES).read_text().splitlines() if (root / PACKED_FILES).is_file() else []
    )
    files = np.array(names) if len(names) == meta["n"] else np.arange(meta["n"]).astype(str)
    return FolderScan(root, files, labels, meta.get("classes"), meta)


def load_uint8(reader, num_workers: int = 0, chunk: int = 256) -> Tensor:
    """Every image of `reader` as one uint8 tensor (N, C, S, S), decoded by `num_workers`
    DataLoader workers (in the calling process when 0)."""
    from torch.utils.data import DataLoader

    out = torch.empty(len(reader), *reader.shape, dtype=torch.uint8)
    starts = list(range(0, len(reader), chunk))
    batches = DataLoader(
        _Chunks(reader, chunk),
        sampler=starts,
        batch_size=None,
        num_workers=num_workers,
        generator=torch.Generator(),  # its seed draw must not shift the global RNG
    )
    for start, images in zip(starts, batches, strict=True):
        out[start : start + len(images)] = images
    return out


class _Chunks(torch.utils.data.Dataset):
    def __init__(self, reader, chunk: int) -> None:
        self.reader, self.chunk = reader, chunk

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, start: int) -> Tensor:
        return self.reader.uint8(range(start, min(start + self.chunk, len(self.reader))))
