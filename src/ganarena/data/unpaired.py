"""Two-domain unpaired data for image-to-image translation (CycleGAN, Zhu et al. 2017).

`UnpairedDataModule` serves batches (x_a, y_a, x_b, y_b) drawn from two ImageDataModules that are
shuffled independently, as the reference's `unaligned_dataset.py` does: no image of A is tied to
any image of B. `TransformedDataModule` derives a domain from another by a known pixel mapping, so
that a translation can be scored against the truth. `UnpairedFolderDataModule` reads the
reference's folder layout (trainA/ trainB/ [testA/ testB/]).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganarena.data.base import DEVICE_RESIDENT_BYTES, ImageDataModule, _check_int
from ganarena.data.datasets import IMAGE_EXTENSIONS, ImageFolderDataModule, _path
from ganarena.data.folder import as_float
from ganarena.errors import ConfigError, DataError

Mapping = Callable[[Tensor], Tensor]
TRANSFORMS = ("invert", "color")


class TransformedDataModule(ImageDataModule):
    """The images of `base` under a fixed, invertible pixel mapping (labels unchanged).

    transform="invert": x -> -x (in [-1, 1]: black and white swap).
    transform="color": x_c -> (x_c + 1) * tint_c - 1 per channel, with tint in (0, 1]^3: a
    grayscale base loaded with channels=3 becomes that colour on black. Needs a 3-channel base.
    `apply` / `inverse` are the mapping and its inverse, the ground truth of a translation from
    the base's domain to this one. The reference set is the base's, mapped likewise.
    """

    def __init__(
        self,
        base: ImageDataModule,
        transform: str,
        tint: Sequence[float] = (1.0, 0.5, 0.0),
        name: str | None = None,
        batch_size: int | None = None,
        num_workers: int | None = None,
    ):
        if not isinstance(base, ImageDataModule):
            raise ConfigError(
                f"TransformedDataModule needs an ImageDataModule as `base` (a `_target_` node "
                f"in the dataset config), got {type(base).__name__}."
            )
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"Unknown domain transform {transform!r}; use one of {', '.join(TRANSFORMS)}."
            )
        super().__init__(
            name=name if name is not None else f"{base.name}+{transform}",
            image_size=base.image_size,
            channels=base.channels,
            batch_size=batch_size if batch_size is not None else base.batch_size,
            num_workers=num_workers if num_workers is not None else base.num_workers,
            seed=base.seed,
        )
        self.base = base
        self.transform = transform
        self.tint = None
        if transform == "color":
            if base.channels != 3:
                raise ConfigError(
                    f"transform=color tints the three RGB channels, but the base dataset "
                    f"'{base.name}' has channels={base.channels}. Load the base with channels: 3 "
                    "(grayscale is replicated into RGB), or use transform=invert."
                )
            tint = [float(t) for t in tint] if isinstance(tint, Sequence) else []
            if len(tint) != 3 or not all(0 < t <= 1 for t in tint):
                raise ConfigError(
                    f"`tint` must be three numbers in (0, 1] (R, G, B), got {tint!r}; "
                    "e.g. tint: [1.0, 0.5, 0.0] (orange)."
                )
            self.tint = torch.tensor(tint).view(1, 3, 1, 1)

    def apply(self, x: Tensor) -> Tensor:
        """The mapping base domain -> this domain, on images in [-1, 1] of shape (N, C, H, W)."""
        if self.transform == "invert":
            return -x
        return (x + 1) * self.tint.to(x.device, x.dtype) - 1

    def inverse(self, x: Tensor) -> Tensor:
        """The mapping this domain -> base domain (exact up to float rounding)."""
        if self.transform == "invert":
            return -x
        return (x + 1) / self.tint.to(x.device, x.dtype) - 1

    def prepare_data(self) -> None:
        self.base.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        self.base.setup(stage)
        self.resolved = f"{self.base.resolved}+{self.transform}"
        self.num_classes = self.base.num_classes
        if not isinstance(self.base.stored, Tensor):
            raise ConfigError(
                f"A transformed domain maps its base's images in memory, but the base "
                f"'{self.base.name}' streams them from disk; load the base in memory "
                "(in_memory: true, or a smaller set)."
            )
        self.images = self.apply(self.base.images)  # float32: the mapping is not uint8-exact
        self.labels = self.base.labels
        ref_store, ref_labels, split = self.base._reference
        ref = self._store if ref_store is self.base.stored else self.apply(self.base.reference()[0])
        self._reference = (ref, ref_labels, split)
        self._require_full_batch("use more data in the base dataset")


def _origin(dm: ImageDataModule) -> tuple[tuple, Mapping | None, Mapping | None]:
    """(key of the untransformed data, map origin -> dm, map dm -> origin); None = identity."""
    if isinstance(dm, TransformedDataModule):
        key, to_base, from_base = _origin(dm.base)
        to_dm = dm.apply if to_base is None else (lambda x: dm.apply(to_base(x)))
        from_dm = dm.inverse if from_base is None else (lambda x: from_base(dm.inverse(x)))
        return key, to_dm, from_dm
    root = getattr(dm, "root", None)
    return (type(dm).__qualname__, dm.name, dm.image_size, dm.channels, str(root)), None, None


def _then(first: Mapping | None, second: Mapping | None) -> Mapping | None:
    if first is None:
        return second
    if second is None:
        return first
    return lambda x: second(first(x))


def _perm_seed(*parts: int) -> int:
    """A 64-bit torch seed from several non-negative ints, well mixed (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0])


class UnpairedBatchSampler:
    """Index batches (idx_a, idx_b) for two domains shuffled independently.

    Each domain is an endless stream of its images in successive random permutations (the k-th
    from (seed, domain, k) alone); batch g takes items [g*B, (g+1)*B) of both streams. An epoch is
    max(n_a, n_b) // B batches (the reference's epoch covers the larger domain), so the smaller
    domain cycles and leftovers roll over instead of being dropped. The order is a function of
    the number of batches consumed: `seek(n)` resumes exactly where a run stopped.
    """

    def __init__(self, n_a: int, n_b: int, batch_size: int, seed: int = 0) -> None:
        self.sizes, self.batch_size, self.seed = (n_a, n_b), batch_size, seed
        self.epoch, self.position = 0, 0
        self._perms: dict[tuple[int, int], Tensor] = {}

    def __len__(self) -> int:
        return max(self.sizes) // self.batch_size

    def _stream(self, side: int, start: int, stop: int) -> Tensor:
        n = self.sizes[side]
        first, last = start // n, (stop - 1) // n
        perms = []
        for k in range(first, last + 1):
            if (side, k) not in self._perms:
                if len(self._perms) > 8:  # only the last permutation or two are ever reused
                    self._perms.clear()
                gen = torch.Generator().manual_seed(_perm_seed(self.seed, side, k))
                self._perms[side, k] = torch.randperm(n, generator=gen)
            perms.append(self._perms[side, k])
        offset = first * n
        return torch.cat(perms)[start - offset : stop - offset]

    def batch(self, g: int) -> tuple[list[int], list[int]]:
        """The index lists of global batch g (counted from the start of training)."""
        start, stop = g * self.batch_size, (g + 1) * self.batch_size
        return self._stream(0, start, stop).tolist(), self._stream(1, start, stop).tolist()

    def __iter__(self):
        while self.position < len(self):
            self.position += 1
            yield self.batch(self.epoch * len(self) + self.position - 1)
        self.epoch, self.position = self.epoch + 1, 0

    def seek(self, consumed: int) -> None:
        """Continue after `consumed` batches (counted from the start of training)."""
        self.epoch, self.position = divmod(consumed, len(self))


class _PairIndexed(Dataset):
    """(x_a, y_a, x_b, y_b) gathered for a pair of index lists from each domain's images as
    stored (a tensor, uint8 or float, or a reader of files) and labels. Images come out as stored
    (a reader's as uint8 where it offers `uint8`): UnpairedDataModule.on_after_batch_transfer
    converts them to float on the device, so 4x fewer bytes cross from the loader."""

    def __init__(self, a: tuple, b: tuple) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return max(len(self.a[0]), len(self.b[0]))

    @staticmethod
    def _side(side: tuple, idx: list[int]) -> tuple[Tensor, Tensor]:
        store, labels = side
        if not isinstance(store, Tensor):
            read = getattr(store, "uint8", store.read)
            return read(idx), labels[torch.as_tensor(idx, dtype=torch.long)]
        i = torch.as_tensor(idx, device=store.device)
        return store[i], labels[i]

    def __getitem__(self, idx: tuple[list[int], list[int]]) -> tuple[Tensor, ...]:
        return (*self._side(self.a, idx[0]), *self._side(self.b, idx[1]))


def _labels(dm: ImageDataModule) -> Tensor:
    if dm.labels is not None:
        return dm.labels
    return torch.full((dm.n_images,), -1, dtype=torch.long)


class UnpairedDataModule(L.LightningDataModule):
    """Two image domains A and B for unpaired translation, batches (x_a, y_a, x_b, y_b).

    x_*: float32 (B, C, H, W) in [-1, 1] once on the device (the loader yields them as stored,
    uint8 for most sets; on_after_batch_transfer converts them); y_*: int64 (B,) class labels, -1
    where a domain has none. A and B are drawn independently (see UnpairedBatchSampler), seeded
    from `seed` and `shuffle_seed` (which ganarena-train sets from the run seed). `.a` and `.b`
    are the two ImageDataModules, each usable alone (domain classifiers, reference statistics).
    `truth_ab` / `truth_ba` map images of one domain onto the other when the relation is known
    (one domain a TransformedDataModule of the same source data as the other), else None.

    `image_size`, `channels` and `limit`, when given, are the values the dataset config passes to
    both domains; they are checked against the domains, not applied.
    """

    # What this data trains: a translation task (task=cyclegan), not a generative one; scored
    # per direction (ganarena.metrics.translation).
    serves = "translation"
    scored_as = "translation"
    # Seed of the shuffling order (configure(): ganarena-train passes the run's seed).
    shuffle_seed: int = 0

    def __init__(
        self,
        domain_a: ImageDataModule,
        domain_b: ImageDataModule,
        batch_size: int,
        name: str = "unpaired",
        seed: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        limit: int | None = None,
        num_workers: int = 0,
    ):
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ConfigError(f"dataset.name must be a non-empty string, got {name!r}.")
        _check_int("batch_size", batch_size, 1)
        _check_int("seed", seed, 0)
        _check_int("num_workers", num_workers, 0)
        if limit is not None:
            _check_int("limit", limit, 1)
        for side, dm in (("a", domain_a), ("b", domain_b)):
            if not isinstance(dm, ImageDataModule):
                raise ConfigError(
                    f"dataset.domain_{side} must build an ImageDataModule (a node with a "
                    f"`_target_` such as ganarena.data.MNISTSampleDataModule), got "
                    f"{type(dm).__name__}. See conf/dataset/mnist2inverted.yaml for the layout."
                )
        self.a, self.b = domain_a, domain_b
        self.name = name
        self.batch_size = batch_size
        self.seed = seed
        self.limit = limit
        self.num_workers = num_workers
        self.resolved = name
        self._check_alike("channels", channels)
        self._check_alike("image_size", image_size)
        self.channels = domain_a.channels
        self.image_size = domain_a.image_size
        self.num_classes = None  # translation is unconditional; the domains keep their labels
        self._sampler: UnpairedBatchSampler | None = None
        self._fingerprint: str | None = None
        self._ready = False

    def _describe(self, side: str) -> str:
        dm = self.a if side == "a" else self.b
        return f"domain {side.upper()} ('{dm.name}', {self._where(side)})"

    def _where(self, side: str) -> str:
        """Where the user sets up that domain (a config node or a folder)."""
        return f"dataset.domain_{side}"

    def _check_alike(self, key: str, expected: int | None) -> None:
        va, vb = getattr(self.a, key), getattr(self.b, key)
        if va != vb:
            fix = (
                "Set both to the same value (3 replicates grayscale into RGB, 1 converts RGB to "
                "luma)"
                if key == "channels"
                else "Set both to the same value (each domain is resized to it)"
            )
            raise ConfigError(
                f"The two domains of dataset '{self.name}' must have the same {key}, since each "
                f"generator maps one onto the other: {self._describe('a')} has {key}={va}, "
                f"{self._describe('b')} has {key}={vb}. {fix}: dataset.{key}=N sets both when the "
                f"domains take ${{..{key}}}, or set dataset.domain_a.{key} and "
                f"dataset.domain_b.{key}."
            )
        if expected is not None and expected != va:
            raise ConfigError(
                f"dataset.{key}={expected} but both domains of '{self.name}' have {key}={va}. "
                f"Let the domains take it from the dataset (`{key}: ${{..{key}}}`) or drop the "
                f"domain-level {key} override."
            )

    def prepare_data(self) -> None:
        self.a.prepare_data()
        self.b.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        for side in ("a", "b"):
            dm = getattr(self, side)
            try:
                dm.setup(stage)
            except DataError as err:
                raise DataError(f"In {self._describe(side)} of '{self.name}': {err}") from None
            if dm.n_images == 0:
                raise DataError(
                    f"{self._describe(side).capitalize()} of '{self.name}' has no images. Point "
                    "it at data (or relax its `limit` / `part`)."
                )
        if max(self.a.n_images, self.b.n_images) < self.batch_size:
            raise DataError(
                f"Both domains of '{self.name}' hold fewer images than dataset.batch_size="
                f"{self.batch_size} ({self.a.n_images} and {self.b.n_images}), so no full "
                "batch can be drawn. Lower dataset.batch_size or use more data."
            )
        if self.a.resolved != self.a.name or self.b.resolved != self.b.name:
            self.resolved = f"{self.name} (A: {self.a.resolved}, B: {self.b.resolved})"
        self._ready = True

    def fingerprint(self) -> str:
        """sha256 hex digest of both domains' training images and labels (a cache key)."""
        self.setup()
        if self._fingerprint is None:
            pair = f"{self.a.fingerprint()}|{self.b.fingerprint()}".encode()
            self._fingerprint = hashlib.sha256(pair).hexdigest()
        return self._fingerprint

    @property
    def truth_ab(self) -> Mapping | None:
        """The true A -> B mapping on images (N, C, H, W) in [-1, 1], or None when unknown."""
        return self._truth(self.a, self.b)

    @property
    def truth_ba(self) -> Mapping | None:
        """The true B -> A mapping, or None when unknown."""
        return self._truth(self.b, self.a)

    @staticmethod
    def _truth(src: ImageDataModule, dst: ImageDataModule) -> Mapping | None:
        key_s, _, from_s = _origin(src)
        key_d, to_d, _ = _origin(dst)
        if key_s != key_d:
            return None  # different source data: the relation is what the model must learn
        return _then(from_s, to_d) or (lambda x: x)

    @property
    def sampler(self) -> UnpairedBatchSampler:
        if self._sampler is None:
            self.setup()
            self._sampler = UnpairedBatchSampler(
                self.a.n_images,
                self.b.n_images,
                self.batch_size,
                _perm_seed(self.seed, self.shuffle_seed),
            )
        return self._sampler

    def seek(self, batches: int) -> None:
        """Continue the data order after `batches` consumed batches (a resumed run)."""
        self.sampler.seek(batches)

    def configure(self, *, shuffle_seed: int, batched: bool = True) -> None:
        """Seed of the data order (batches are always gathered whole here)."""
        self.shuffle_seed, self._sampler = int(shuffle_seed), None

    def real(self, purpose: str):
        """Each domain has its own real images (`.a.real(purpose)`, `.b.real(purpose)`): the
        translation evaluator scores each direction against its target domain."""
        raise ConfigError(
            f"'{self.name}' holds two domains, so it has no single real set for {purpose!r}; "
            "use dataset.a.real() / dataset.b.real() (what the translation evaluator does)."
        )

    def preview_real(self, task) -> None:
        """No separate real picture: the preview grid's first row is the real input already."""
        return None

    def preview(self, task, step: int):
        """The picture of a translation task at `step`: a grid of `task.sample_fixed()` (rows of
        input, translation, reconstruction), `task.grid_nrow` images per row."""
        from torchvision.utils import make_grid

        images = task.sample_fixed()
        return make_grid(images, nrow=task.grid_nrow, normalize=True, value_range=(-1, 1))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """A loader batch (x_a, y_a, x_b, y_b) with both domains' images as float32 in [-1, 1]:
        converted here, on the device, after the images crossed from the loader as stored."""
        x_a, y_a, x_b, y_b = batch
        return as_float(x_a), y_a, as_float(x_b), y_b

    def train_dataloader(self) -> DataLoader:
        self.setup()
        a = (self.a.stored, _labels(self.a))
        b = (self.b.stored, _labels(self.b))
        trainer = self.trainer
        in_memory = isinstance(a[0], Tensor) and isinstance(b[0], Tensor)
        if self.num_workers == 0 and trainer is not None and in_memory:
            device = trainer.strategy.root_device
            size = a[0].nbytes + b[0].nbytes
            if device.type != "cpu" and size <= DEVICE_RESIDENT_BYTES:
                # Small datasets live on the accelerator: no per-step host-to-device copies.
                a = tuple(t.to(device) for t in a)
                b = tuple(t.to(device) for t in b)
        # A private generator: the DataLoader's base-seed draw must not shift the global RNG.
        return DataLoader(
            _PairIndexed(a, b),
            sampler=self.sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.shuffle_seed),
        )


def folder_has_images(path: Path) -> bool:
    """Whether `path` is a folder with at least one image file under it (recursively)."""
    return path.is_dir() and any(
        p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in path.rglob("*")
    )


class FolderDomain(ImageFolderDataModule):
    """One domain of the CycleGAN folder layout: images under `root` (trainA/), and when
    `test_root` (testA/) holds images, those as the evaluation reference set (else the training
    images, as for every dataset without a test split; `reference()` names the split used).
    Held in memory or streamed as `in_memory` says (see ImageFolderDataModule)."""

    def __init__(self, root, test_root=None, **kwargs):
        super().__init__(root, test_root=test_root, **kwargs)


class UnpairedFolderDataModule(UnpairedDataModule):
    """The reference's unaligned layout: root/trainA, root/trainB (any image sizes, grayscale or
    colour), optional root/testA, root/testB as the reference sets for evaluation. Images are
    resized (shorter side) and center-cropped to image_size and converted to `channels`; each
    domain is held in memory or streamed from disk as `in_memory` says (ImageFolderDataModule)."""

    def __init__(
        self,
        root,
        batch_size: int,
        name: str = "unpaired_folder",
        image_size: int = 64,
        channels: int = 3,
        seed: int = 0,
        limit: int | None = None,
        num_workers: int = 0,
        in_memory="auto",
    ):
        self.root = _path(root)
        shared = {
            "in_memory": in_memory,
            "image_size": image_size,
            "channels": channels,
            "batch_size": batch_size,
            "num_workers": num_workers,
            "limit": limit,
            "seed": seed,
        }
        domains = [
            FolderDomain(
                self.root / f"train{s}", self.root / f"test{s}", name=f"train{s}", **shared
            )
            for s in ("A", "B")
        ]
        super().__init__(
            *domains,
            batch_size=batch_size,
            name=name,
            seed=seed,
            image_size=image_size,
            channels=channels,
            limit=limit,
            num_workers=num_workers,
        )

    def _where(self, side: str) -> str:
        return str(self.root / f"train{side.upper()}")

    def setup(self, stage: str | None = None) -> None:
        if not self._ready:
            missing = [s for s in ("trainA", "trainB") if not (self.root / s).is_dir()]
            if missing:
                found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
                where = (
                    f"{self.root} holds {found[:10]}"
                    if self.root.is_dir()
                    else f"{self.root} does not exist"
                )
                raise DataError(
                    f"Unpaired folder dataset '{self.name}' needs {' and '.join(missing)} under "
                    f"dataset.root: the CycleGAN layout is root/trainA/ and root/trainB/ (images of "
                    f"{', '.join(IMAGE_EXTENSIONS)}), with optional testA/ and testB/ as evaluation "
                    f"references; {where}. Point dataset.root at such a folder."
                )
        super().setup(stage)
