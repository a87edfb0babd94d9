"""Datamodules: whole datasets held in memory as float32 (N, C, H, W) in [-1, 1]; unpaired
two-domain datamodules (unpaired.py) for image-to-image translation."""

from ganarena.data.base import ImageDataModule
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
from ganarena.data.unpaired import (
    TransformedDataModule,
    UnpairedBatchSampler,
    UnpairedDataModule,
    UnpairedFolderDataModule,
)

__all__ = [
    "CIFAR10DataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GaussianMixtureDataModule",
    "IdxDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "MNISTSampleDataModule",
    "TorchvisionDataModule",
    "TransformedDataModule",
    "UnpairedBatchSampler",
    "UnpairedDataModule",
    "UnpairedFolderDataModule",
    "read_idx",
    "read_idx_pair",
]
