"""Stacked MNIST: three MNIST digits, drawn independently at random, stacked as the R, G and B
channels of one 28 x 28 x 3 image, so the data has 1,000 modes (the digit triples). The
mode-collapse benchmark of Metz et al. 2017 (Unrolled GAN), Srivastava et al. 2017 (VEEGAN) and
Lin et al. 2018 (PacGAN), scored by ganarena.metrics.stacked (modes covered out of 1,000, KL to
the uniform mode distribution) with the digit classifier trained on the single-channel digits.

The digits come from any MNIST source ganarena reads (`digits`: mnist, idx, mnist_sample, or a
built ImageDataModule). `mode="fresh"` stacks new triples for every batch, from the seed and the
batch's index (as PacGAN's Unrolled-GAN code stacks on the fly), so a resumed run continues with
the exact next batch; `mode="fixed"` draws `n_train` triples once (PacGAN's VEEGAN code: 128,000)
and shuffles them epoch by epoch. Images are gathered from the digit pool a batch at a time: no
stacked set is held in memory. The triple (100 r + 10 g + b, of the digits' labels) is each
image's label, but the data declares no classes, so `model.conditional=auto` trains the
benchmark's unconditional GAN, not a 1,000-class conditional one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganarena.data.base import ImageDataModule, ResumableBatchSampler, _check_int
from ganarena.data.folder import as_float
from ganarena.data.protocol import RealImages
from ganarena.errors import ConfigError, DataError

MODES = 1000  # digit triples
MODE_CHOICES = ("fresh", "fixed")
SOURCES = ("mnist", "idx", "mnist_sample")
REFERENCE_STREAM = 1  # the reference triples' seed offset (training: 0)


def triple_codes(digits: Tensor) -> Tensor:
    """Mode indices 0..999 of digit triples (N, 3): 100 r + 10 g + b."""
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def _seed(*parts: int) -> int:
    """A 63-bit generator seed from integers (distinct tuples -> unrelated streams)."""
    digest = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build_source(digits: Any, **kwargs: Any) -> ImageDataModule:
    """The single-channel digit datamodule named by `digits` (or `digits` itself, if built)."""
    from ganarena.data import datasets

    if isinstance(digits, ImageDataModule):
        return digits
    images, labels = kwargs.pop("images"), kwargs.pop("labels")
    root, download, fallback = (kwargs.pop(k) for k in ("root", "download", "fallback"))
    if digits == "mnist":
        return datasets.MNISTDataModule(root=root, download=download, fallback=fallback, **kwargs)
    if digits == "mnist_sample":
        return datasets.MNISTSampleDataModule(**kwargs)
    if digits == "idx" and images is not None:
        return datasets.IdxDataModule(images=images, labels=labels, **kwargs)
    raise ConfigError(
        f"dataset.digits must be one of {', '.join(SOURCES)} (dataset=idx also needs "
        f"dataset.images and dataset.labels), got {digits!r}"
        + (" without dataset.images" if digits == "idx" else "")
        + ". E.g. dataset.digits=idx dataset.images=../shared/datasets/mnist-test/"
        "t10k-images-idx3-ubyte.gz dataset.labels=../shared/datasets/mnist-test/"
        "t10k-labels-idx1-ubyte.gz."
    )


class _FreshBatches:
    """Batch numbers 0, 1, 2, ... as one-item lists, `per_epoch` per epoch; `seek(n)` continues
    after n consumed batches (the batch number is all a fresh batch is drawn from)."""

    def __init__(self, per_epoch: int) -> None:
        self.per_epoch, self.epoch, self.position = per_epoch, 0, 0

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        while self.position < self.per_epoch:
            self.position += 1
            yield [self.epoch * self.per_epoch + self.position - 1]
        self.epoch, self.position = self.epoch + 1, 0

    def seek(self, consumed: int) -> None:
        self.epoch, self.position = divmod(consumed, self.per_epoch)


class _StackedSet(Dataset):
    """Indexed by a whole batch: a list of triple indices (fixed) or one batch number (fresh)."""

    def __init__(self, dm: StackedMNISTDataModule) -> None:
        self.dm = dm

    def __len__(self) -> int:
        return self.dm.n_train

    def __getitem__(self, key: list[int]) -> tuple[Tensor, Tensor]:
        dm = self.dm
        if dm.mode == "fixed":
            triples = dm.train_triples[torch.as_tensor(key)]
        else:
            gen = torch.Generator().manual_seed(_seed(dm.seed, dm.shuffle_seed, key[0]))
            triples = torch.randint(len(dm.pool), (dm.batch_size, 3), generator=gen)
        return dm.stack(dm.pool, triples), triple_codes(dm.pool_labels[triples])


class StackedMNISTDataModule(L.LightningDataModule):
    """Stacked MNIST (see the module docstring); batches (images (B, 3, H, W) in [-1, 1], triple
    codes (B,)). `n_train`: images per epoch (fresh) or the fixed set's size; `n_reference`: real
    stacked images of the evaluation reference (drawn once, from the source's test split when it
    has one), 26,000 as VEEGAN and PacGAN score."""

    serves = "generative"
    scored_as = "stacked_digits"  # digit classifier per channel (ganarena.metrics.stacked)
    num_classes = None  # unconditional by design (see the module docstring)

    def __init__(
        self,
        name: str = "stacked_mnist",
        digits: Any = "mnist",
        mode: str = "fresh",
        n_train: int = 128_000,
        n_reference: int = 26_000,
        image_size: int = 28,
        channels: int = 3,
        batch_size: int = 64,
        num_workers: int = 0,
        limit: int | None = None,
        seed: int = 0,
        images: str | None = None,
        labels: str | None = None,
        root: str = "data",
        download: bool = True,
        fallback: str | None = "mnist_sample",
    ):
        super().__init__()
        if mode not in MODE_CHOICES:
            raise ConfigError(
                f"dataset.mode must be 'fresh' (new triples every batch, as PacGAN's Unrolled-GAN "
                f"code) or 'fixed' (n_train triples drawn once, as its VEEGAN code), got {mode!r}."
            )
        if channels != 3 or isinstance(channels, bool):
            raise ConfigError(
                f"dataset=stacked_mnist stacks three digits as the R, G, B channels, so it needs "
                f"dataset.channels=3; got {channels!r}. Remove that override."
            )
        for key, value, low in (("n_train", n_train, 1), ("n_reference", n_reference, 2)):
            _check_int(key, value, low, "stacked_mnist")
        _check_int("batch_size", batch_size, 1, "stacked_mnist")
        _check_int("num_workers", num_workers, 0, "stacked_mnist")
        _check_int("seed", seed, 0, "stacked_mnist")
        if n_train < batch_size:
            raise ConfigError(
                f"dataset.n_train={n_train} is below dataset.batch_size={batch_size}: no full "
                "batch per epoch. Raise dataset.n_train (PacGAN: 128,000)."
            )
        self.source = build_source(
            digits, images=images, labels=labels, root=root, download=download,
            fallback=fallback, image_size=image_size, channels=1, batch_size=1, limit=limit,
            seed=seed,
        )  # fmt: skip
        self.name, self.mode, self.seed = name, mode, seed
        self.n_train, self.n_reference = n_train, n_reference
        self.image_size, self.channels = image_size, 3
        self.batch_size, self.num_workers = batch_size, num_workers
        self.resolved = name
        self.shuffle_seed, self._sampler, self._fingerprint = 0, None, None
        self.pool: Tensor | None = None

    # -- data ------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.pool is not None:
            return
        self.source.setup(stage)
        images, labels = self.source.images, self.source.labels
        if labels is None:
            raise DataError(
                f"dataset=stacked_mnist needs labelled digits (the score classifies every channel "
                f"with a classifier trained on them), but '{self.source.resolved}' has no labels. "
                "Give dataset.labels (an IDX label file) or use dataset.digits=mnist."
            )
        self.pool, self.pool_labels = images, labels
        ref_images, ref_labels, self.reference_split = self.source.reference()
        self.ref_pool, self.ref_labels = ref_images, ref_labels
        self.resolved = f"stacked_{self.source.resolved}"
        gen = torch.Generator().manual_seed(_seed(self.seed, REFERENCE_STREAM))
        self.reference_triples = torch.randint(
            len(ref_images), (self.n_reference, 3), generator=gen
        )
        self.train_triples = None
        if self.mode == "fixed":
            gen = torch.Generator().manual_seed(_seed(self.seed, 0))
            self.train_triples = torch.randint(len(images), (self.n_train, 3), generator=gen)

    @staticmethod
    def stack(pool: Tensor, triples: Tensor) -> Tensor:
        """Images (k, 3, H, W) in [-1, 1]: digit triples[i, c] of `pool` (N, 1, H, W; uint8 or
        float, see ganarena.data.base) as channel c."""
        return as_float(pool[triples.reshape(-1)]).view(len(triples), 3, *pool.shape[-2:])

    def configure(self, *, shuffle_seed: int, batched: bool = True) -> None:
        """Seed of the data order (fresh triples and the fixed set's shuffles); always batched."""
        self.shuffle_seed, self._sampler = int(shuffle_seed), None

    @property
    def sampler(self) -> ResumableBatchSampler | _FreshBatches:
        if self._sampler is None:
            per_epoch = self.n_train // self.batch_size
            self._sampler = (
                ResumableBatchSampler(self.n_train, self.batch_size, self.shuffle_seed)
                if self.mode == "fixed"
                else _FreshBatches(per_epoch)
            )
        return self._sampler

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            _StackedSet(self),
            sampler=self.sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.shuffle_seed),  # not the global RNG
        )

    def seek(self, batches: int) -> None:
        self.sampler.seek(batches)

    def fingerprint(self) -> str:
        """sha256 of the digit source and how triples are drawn (a cache key)."""
        self.setup()
        if self._fingerprint is None:
            parts = (self.source.fingerprint(), self.mode, self.n_train, self.seed, MODES)
            self._fingerprint = hashlib.sha256(repr(parts).encode()).hexdigest()
        return self._fingerprint

    def real(self, purpose: str) -> RealImages:
        """The real images for "reference" (`n_reference` real stacked images, labelled by their
        triple codes) or "classifier" (the single-channel digits the digit classifier learns)."""
        self.setup()
        if purpose == "classifier":
            return self.source.real("classifier")
        if purpose != "reference":
            raise ValueError(f"real(purpose) takes 'reference' or 'classifier', got {purpose!r}")
        triples, pool = self.reference_triples, self.ref_pool
        key = f"{self.source.fingerprint()}-ref-{self.seed}-{self.n_reference}"
        key = hashlib.sha256(key.encode()).hexdigest()
        return RealImages(
            len(triples),
            lambda idx: self.stack(pool, triples[idx]),
            triple_codes(self.ref_labels[triples]),
            self.reference_split,
            key,
            (3, *pool.shape[-2:]),
        )

    # -- pictures --------------------------------------------------------------------------------
    def preview(self, task, step: int):
        """A grid (3, H, W) of the task's fixed samples, in colour."""
        from torchvision.utils import make_grid

        return make_grid(
            task.sample_fixed(), nrow=task.grid_nrow, normalize=True, value_range=(-1, 1)
        )

    def preview_real(self, task) -> Tensor:
        """As many real stacked images as the preview shows, laid out alike."""
        from torchvision.utils import make_grid

        n = len(task.sample_fixed())
        images = self.stack(self.ref_pool, self.reference_triples[:n])
        return make_grid(images, nrow=task.grid_nrow, normalize=True, value_range=(-1, 1))
