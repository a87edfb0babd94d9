"""Precision, recall, density and coverage of generated samples, in a backbone's feature space.

- Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
  Metric for Assessing Generative Models", k = 3): the share of fakes inside the union of the
  real samples' k-NN balls (fidelity), and of reals inside the fakes' balls (diversity).
- Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models", k = 5): how many real balls each fake falls in, divided by k (1 on average
  for fakes distributed like the reals; above 1 where they crowd dense regions), and the share of
  real balls that hold at least one fake. Outlier-robust versions of the two above.

One pass over the fake-to-real distances gives all four, in chunks of `chunk` fakes, so memory
stays at chunk x N floats whatever N (10k x 10k in chunks of 1,024: 40 MB at a time); the real
k-NN radii depend on the reference alone and can be passed in (the evaluator keeps them).
tests/test_prdc.py checks the four against the `prdc` package (Naeem et al.'s reference code)
and precision/recall against torch-fidelity's implementation, on the same features.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganarena.metrics import registry as M

K_PR, K_DC = 3, 5  # the papers' choices
PRDC = (M.PRECISION, M.RECALL, M.DENSITY, M.COVERAGE)


def knn_radii(x: Tensor, ks: tuple[int, ...], chunk: int = 1024) -> Tensor:
    """(N, len(ks)): distance from each row of x to its k-th nearest other row, for each k."""
    out = []
    for rows in x.split(chunk):
        d = torch.cdist(rows, x).topk(max(ks) + 1, dim=1, largest=False).values
        out.append(d[:, list(ks)])  # column 0 is the row itself (distance 0)
    return torch.cat(out)


def prdc(
    real: Tensor,
    fake: Tensor,
    real_radii: Tensor | None = None,
    chunk: int = 1024,
    real_labels: Tensor | None = None,
) -> dict:
    """precision, recall (k = 3), density, coverage (k = 5) of `fake` against `real` features
    (rows); {} when either set has too few rows for the neighbourhoods (k + 1).
    `real_radii`: knn_radii(real, (K_PR, K_DC)), when already known. With `real_labels` (the
    class of each real row) also `coverage_per_class`: coverage over the real rows of each class
    c = 0..max (None where there are none), whose mean weighted by class size is coverage: a class
    the generator misses or renders badly shows as a low entry; `coverage_class_min` the lowest."""
    if min(len(real), len(fake)) <= max(K_PR, K_DC):
        return {}
    real, fake = real.float(), fake.float()
    if real_radii is None:
        real_radii = knn_radii(real, (K_PR, K_DC), chunk)
    r_pr, r_dc = real_radii[:, 0], real_radii[:, 1]
    fake_radii = knn_radii(fake, (K_PR,), chunk)[:, 0]
    in_real = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    balls = torch.zeros(len(fake), dtype=torch.float64, device=real.device)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    nearest = torch.full((len(real),), float("inf"), device=real.device)
    for start in range(0, len(fake), chunk):
        d = torch.cdist(fake[start : start + chunk], real)  # (chunk, n_real)
        stop = start + len(d)
        in_real[start:stop] = (d < r_pr).any(1)
        balls[start:stop] = (d < r_dc).sum(1).double()
        recalled |= (d < fake_radii[start:stop, None]).any(0)
        nearest = torch.minimum(nearest, d.min(0).values)
    covered = nearest < r_dc
    out = {
        M.PRECISION: float(in_real.double().mean()),
        M.RECALL: float(recalled.double().mean()),
        M.DENSITY: float(balls.mean() / K_DC),
        M.COVERAGE: float(covered.double().mean()),
    }
    if real_labels is not None and len(real_labels):
        real_labels = real_labels.to(covered.device)
        n = torch.bincount(real_labels)
        hit = torch.bincount(real_labels, weights=covered.double(), minlength=len(n))
        per_class = [float(h / c) if c else None for h, c in zip(hit, n, strict=True)]
        out[M.COVERAGE_PER_CLASS] = per_class
        out[M.COVERAGE_CLASS_MIN] = min(v for v in per_class if v is not None)
    return out
