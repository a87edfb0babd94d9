"""Datamodules: the data protocol every dataset offers (protocol.py: DataSource, RealImages);
whole datasets held in memory, uint8 where exact, served as float32 (N, C, H, W) in [-1, 1]
(base.py); image folders held in memory or streamed from disk, and packed folders (folder.py,
prepare.py: python -m ganarena.data.prepare); the memory estimate and refusal (memory.py);
unpaired two-domain datamodules (unpaired.py) for image-to-image translation; Stacked MNIST,
1,000 modes (stacked.py)."""

from ganarena.data.base import ImageDataModule, ResumableBatchSampler
from ganarena.data.datasets import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    IdxDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    MNISTSampleDataModule,
    TorchvisionDataModule,
)
from ganarena.data.idx import read_idx, read_idx_pair
from ganarena.data.mixture import GaussianMixtureDataModule
from ganarena.data.protocol import DataSource, RealImages
from ganarena.data.stacked import StackedMNISTDataModule
from ganarena.data.unpaired import (
    TransformedDataModule,
    UnpairedBatchSampler,
    UnpairedDataModule,
    UnpairedFolderDataModule,
)

__all__ = [
    "CIFAR10DataModule",
    "DataSource",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GaussianMixtureDataModule",
    "IdxDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "MNISTSampleDataModule",
    "RealImages",
    "ResumableBatchSampler",
    "StackedMNISTDataModule",
    "TorchvisionDataModule",
    "TransformedDataModule",
    "UnpairedBatchSampler",
    "UnpairedDataModule",
    "UnpairedFolderDataModule",
    "read_idx",
    "read_idx_pair",
]
