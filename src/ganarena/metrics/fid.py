"""FID primitives on precomputed features, through torchmetrics (float64 statistics)."""

from __future__ import annotations

import warnings

from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance


class FeaturesIn(nn.Module):
    """Identity extractor: the metrics receive features the backbone has already computed."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x: Tensor) -> Tensor:
        return x


def quiet(cls, **kwargs):
    """A torchmetrics metric without its "will save all extracted features" warning (known and
    bounded here) and without distributed sync (ganarena gathers features itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cls(sync_on_compute=False, **kwargs)


def fid_metric(dim: int) -> FrechetInceptionDistance:
    """torchmetrics FID on precomputed features (float64 statistics); real states survive reset()."""
    return quiet(FrechetInceptionDistance, feature=FeaturesIn(dim), reset_real_features=False)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature matrices (N, d), through the same torchmetrics path the Evaluator uses."""
    fid = fid_metric(real.shape[1])
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())
