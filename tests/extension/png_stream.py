"""A dataset that lives outside ganarena and streams: PNG files read one by one, never held as
one tensor. It implements ganarena's data protocol (ganarena.data.protocol.DataSource) directly,
without subclassing the in-memory ImageDataModule; conf/dataset/png_stream.yaml selects it.

    PYTHONPATH=tests/extension ganarena-train hydra.searchpath=[file://tests/extension/conf] \
        dataset=png_stream dataset.root=/path/to/pngs

Labels come from first-level subfolder names (0/, 1/, ...) when every file is in one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ganarena.data import ResumableBatchSampler
from ganarena.data.base import subset_indices
from ganarena.data.protocol import RealImages
from ganarena.errors import DataError


class PngFiles(Dataset):
    """Item i: (image i decoded to (C, H, W) in [-1, 1], its label or -1)."""

    def __init__(self, files: list[Path], labels: Tensor | None, size: int, channels: int):
        self.files, self.labels, self.size, self.channels = files, labels, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> Tensor:
        with Image.open(self.files[i]) as img:
            img = img.convert("L" if self.channels == 1 else "RGB")
            if img.size != (self.size, self.size):
                img = img.resize((self.size, self.size), Image.BILINEAR)
            x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
        return x.float() / 127.5 - 1

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.image(i), -1 if self.labels is None else int(self.labels[i])

    def read(self, indices: Tensor) -> Tensor:
        return torch.stack([self.image(int(i)) for i in indices])


class PngStreamDataModule(L.LightningDataModule):
    serves = "generative"
    scored_as = "images"

    def __init__(
        self, root, name="png_stream", image_size=28, channels=1, batch_size=64, limit=None, seed=0
    ):
        super().__init__()
        self.limit, self.seed = limit, seed
        self.root, self.name, self.resolved = Path(root), name, name
        self.image_size, self.channels, self.batch_size = image_size, channels, batch_size
        self.num_classes: int | None = None
        self.shuffle_seed = 0
        self.files: PngFiles | None = None
        self._sampler: ResumableBatchSampler | None = None
        self._fingerprint: str | None = None

    # -- the data protocol ---------------------------------------------------------------------
    def configure(self, *, shuffle_seed: int, batched: bool = True) -> None:
        self.shuffle_seed, self._sampler = shuffle_seed, None

    def setup(self, stage: str | None = None) -> None:
        if self.files is not None:
            return
        files = sorted(self.root.rglob("*.png"))
        files = [files[i] for i in subset_indices(len(files), self.limit, self.seed)]
        if len(files) < self.batch_size:
            raise DataError(
                f"png_stream: {self.root} holds {len(files)} PNG files, fewer than one batch of "
                f"{self.batch_size}. Point dataset.root at more images or lower dataset.batch_size."
            )
        parts = [f.relative_to(self.root).parts for f in files]
        labels = None
        if all(len(p) > 1 for p in parts):
            classes = sorted({p[0] for p in parts})
            labels = torch.tensor([classes.index(p[0]) for p in parts])
            self.num_classes = len(classes)
        self.files = PngFiles(files, labels, self.image_size, self.channels)

    @property
    def sampler(self) -> ResumableBatchSampler:
        if self._sampler is None:
            self._sampler = ResumableBatchSampler(
                len(self.files), self.batch_size, self.shuffle_seed
            )
        return self._sampler

    def train_dataloader(self) -> DataLoader:
        self.setup()
        # A private generator: without one the DataLoader draws its base seed from the global
        # RNG at every iter(), shifting the latent stream (a resumed run would then diverge).
        return DataLoader(self.files, batch_sampler=self.sampler, generator=torch.Generator())

    def seek(self, batches: int) -> None:
        self.sampler.seek(batches)

    def fingerprint(self) -> str:
        """sha256 of the files' names and bytes, read one file at a time."""
        if self._fingerprint is None:
            self.setup()
            h = hashlib.sha256()
            for f in self.files.files:
                h.update(str(f.relative_to(self.root)).encode() + f.read_bytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def real(self, purpose: str) -> RealImages:
        """Reference and classifier both read the training files (no test split here)."""
        self.setup()
        shape = (self.channels, self.image_size, self.image_size)
        return RealImages(
            len(self.files), self.files.read, self.files.labels, "train", self.fingerprint(), shape
        )

    def preview(self, task, step: int):
        from torchvision.utils import make_grid

        return make_grid(
            task.sample_fixed(), nrow=task.grid_nrow, normalize=True, value_range=(-1, 1)
        )

    def preview_real(self, task) -> None:
        return None
