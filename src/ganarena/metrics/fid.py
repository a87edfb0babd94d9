"""FID primitives on precomputed features, through torchmetrics (float64 statistics)."""

from __future__ import annotations

import warnings

from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ganarena.errors import ConfigError


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


def sample_settings(eval_cfg, example: str) -> tuple[int, int, int]:
    """(eval.n_samples, eval.seed, eval.batch_size), or a ConfigError: FID needs two samples.
    `example` completes the fix, e.g. "eval.n_samples=1000"."""
    n, seed, bs = (
        int(eval_cfg.get(k, d)) for k, d in (("n_samples", 10000), ("seed", 0), ("batch_size", 500))
    )
    if n < 2 or bs < 1:
        raise ConfigError(
            f"eval.n_samples must be >= 2 and eval.batch_size >= 1, got {n} and {bs}. Fix the "
            f"override, e.g. {example}."
        )
    return n, seed, bs


def fid_metric(dim: int) -> FrechetInceptionDistance:
    """torchmetrics FID on precomputed features (float64 statistics); real states survive reset()."""
    return quiet(FrechetInceptionDistance, feature=FeaturesIn(dim), reset_real_features=False)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between two feature matrices (N, d), through the same torchmetrics path the Evaluator uses."""
    fid = fid_metric(real.shape[1])
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())
