"""Datamodules: whole datasets held in memory as float32 (N, C, H, W) in [-1, 1]."""

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
    "read_idx",
    "read_idx_pair",
]
