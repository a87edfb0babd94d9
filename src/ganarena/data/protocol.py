"""The data protocol: everything the rest of ganarena may ask of a dataset.

A dataset is a LightningDataModule that also offers what `DataSource` names. Training, the
evaluator, the domain classifier, the sample callbacks and ganarena-eval use nothing else (no
attribute probing), so a dataset that streams its files from disk (tests/extension/png_stream.py)
plugs in as well as the in-memory ones (`ImageDataModule`). Real images reach the reference
statistics and the domain classifier as a `RealImages`: read by index or in batches, never
required to be one tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

# What a dataset's samples are scored as (ganarena.metrics.build_evaluator picks the evaluator):
# images (FID/IS/KID in a backbone's features), points (2-D mixtures: modes, high quality),
# translation (two domains: FID of each direction, cycle and label preservation), stacked_digits
# (Stacked MNIST: a digit classifier on each channel, 1,000 modes).
SCORED_AS = ("images", "points", "translation", "stacked_digits")


class RealImages:
    """`n` real images in [-1, 1], shape (C, H, W) each, read by index: `read(indices)` returns
    the images at those indices as one float tensor (k, C, H, W). `labels` (n,) or None, `split`
    names where they come from ("test", "train"), `fingerprint` identifies them (a cache key).
    `in_memory` False says a read costs real work (decoding files): readers then read each image
    once where they can, and `batches` reads ahead with `num_workers` DataLoader workers."""

    def __init__(
        self,
        n: int,
        read: Callable[[Tensor], Tensor],
        labels: Tensor | None,
        split: str,
        fingerprint: str,
        shape: tuple[int, int, int],
        in_memory: bool = True,
        num_workers: int = 0,
    ) -> None:
        self.n, self.read, self.labels = n, read, labels
        self.split, self.fingerprint, self.shape = split, fingerprint, tuple(shape)
        self.in_memory, self.num_workers = in_memory, num_workers

    @classmethod
    def of(cls, images: Tensor, labels: Tensor | None, split: str, fingerprint: str) -> RealImages:
        """An in-memory set: `images` (N, C, H, W)."""
        return cls(len(images), images.__getitem__, labels, split, fingerprint, images.shape[1:])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, indices: Tensor) -> Tensor:
        return self.read(torch.as_tensor(indices, dtype=torch.long))

    def batches(
        self, batch_size: int, indices: Tensor | None = None
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """(images, labels or None) of `indices` (all, in order, by default), batch by batch;
        read ahead by `num_workers` worker processes when set."""
        indices = torch.arange(self.n) if indices is None else torch.as_tensor(indices)
        chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
        if self.num_workers > 0 and len(chunks) > 1:
            from torch.utils.data import DataLoader

            read = DataLoader(
                _ByIndex(self.read), sampler=chunks, batch_size=None,
                num_workers=min(self.num_workers, len(chunks)),
                generator=torch.Generator(),  # its seed draw must not shift the global RNG
            )  # fmt: skip
        else:
            read = map(self.__getitem__, chunks)
        for idx, images in zip(chunks, read, strict=True):
            yield images, None if self.labels is None else self.labels[idx]

    def subset(self, indices: Tensor) -> RealImages:
        """The images at `indices`, in that order (same fingerprint: the caller keys the subset)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        labels = None if self.labels is None else self.labels[indices]
        return RealImages(
            len(indices),
            _Sub(self.read, indices),
            labels,
            self.split,
            self.fingerprint,
            self.shape,
            self.in_memory,
            self.num_workers,
        )


class _ByIndex:
    """A map-style dataset whose item is read(indices) (RealImages.batches' worker side)."""

    def __init__(self, read: Callable[[Tensor], Tensor]) -> None:
        self.read = read

    def __getitem__(self, indices: Tensor) -> Tensor:
        return self.read(indices)


class _Sub:
    """read() of a subset: positions -> the parent's indices."""

    def __init__(self, read: Callable[[Tensor], Tensor], indices: Tensor) -> None:
        self.parent, self.indices = read, indices

    def __call__(self, i: Tensor) -> Tensor:
        return self.parent(self.indices[i])


@runtime_checkable
class DataSource(Protocol):
    """What ganarena asks of a dataset, besides LightningDataModule's `setup` (idempotent) and
    `train_dataloader` (which must yield (images, labels) batches, labels -1 when unlabelled, in
    an order `seek` can restore; give the DataLoader a private `generator`, or its per-epoch
    seed draw shifts the global RNG that latents come from and a resumed run diverges).

    Attributes: `name` (the config's), `resolved` (the dataset really served, e.g. after a
    fallback), `batch_size`, `image_size`, `channels`, `num_classes` (None when unlabelled),
    `serves` (the task kind it feeds: "generative" or "translation") and `scored_as` (one of
    SCORED_AS).
    """

    name: str
    resolved: str
    batch_size: int
    num_classes: int | None
    serves: str
    scored_as: str

    def setup(self, stage: str | None = None) -> None: ...

    def train_dataloader(self) -> Any: ...

    def configure(self, *, shuffle_seed: int, batched: bool = True) -> None:
        """Before setup: seed of the data order (ganarena-train passes the run's seed) and
        whether in-memory data may be gathered a whole batch at a time (speed.batched_loader)."""

    def seek(self, batches: int) -> None:
        """Continue the data order after `batches` consumed batches (exact resume)."""

    def fingerprint(self) -> str:
        """A digest of the training data (a cache key and a record in metrics.json)."""

    def real(self, purpose: str) -> RealImages:
        """The real images for "reference" (evaluation statistics) or "classifier" (what the
        domain classifier learns from)."""

    def preview(self, task: Any, step: int) -> Any:
        """The picture of a task's progress at `step` (an image grid or a matplotlib figure)."""

    def preview_real(self, task: Any) -> Tensor | None:
        """Real images laid out as `preview`'s samples, or None."""


MEMBERS = (
    "name", "resolved", "batch_size", "num_classes", "serves", "scored_as", "setup",
    "train_dataloader", "configure", "seek", "fingerprint", "real", "preview", "preview_real",
)  # fmt: skip


def require_source(dm: Any, where: str) -> DataSource:
    """`dm` if it offers the data protocol, else a ConfigError naming what it lacks."""
    from ganarena.errors import ConfigError

    if isinstance(dm, DataSource):
        return dm
    names = [n for n in MEMBERS if not hasattr(dm, n)]
    raise ConfigError(
        f"{where}: the dataset {type(dm).__module__}.{type(dm).__qualname__} does not offer "
        f"ganarena's data protocol (ganarena.data.protocol.DataSource); it lacks {names}. "
        "Subclass ganarena.data.ImageDataModule, or add those members (see the README's "
        "'A dataset' example)."
    )
