"""Precision/recall/density/coverage (ganarena.metrics.prdc) against the reference code, and
their behaviour on real digits: a set against itself, and a generator that draws one class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ganarena.metrics.prdc import knn_radii, prdc


def test_all_four_match_the_prdc_package_on_the_same_features(capsys):
    import prdc as reference  # Naeem et al.'s code (numpy, full distance matrices; a dev dependency)

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(700, 16, generator=gen)
    fake = 0.8 * torch.randn(500, 16, generator=gen) + 0.3
    ours = prdc(real, fake, chunk=128)  # chunked: several chunks per side
    for k, keys in ((3, ("precision", "recall")), (5, ("density", "coverage"))):
        theirs = reference.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
        for key in keys:
            assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6), key
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # a case that can tell them apart
    # and precision/recall as torch-fidelity computes them (<= for < : no ties here)
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    p, r = calculate_precision_recall_full(fake, real, neighborhood=3)
    assert (ours["precision"], ours["recall"]) == pytest.approx((p, r), abs=1e-6)
    # the evaluator passes the reference's radii in: same scores
    assert prdc(real, fake, real_radii=knn_radii(real, (3, 5))) == ours


def test_knn_radii_exclude_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, (1, 2), chunk=3).tolist() == [[1, 3], [1, 2], [2, 3], [4, 6]]


def digits():
    """sklearn's 1,797 real 8x8 digits (64 pixel features) in two halves of a fixed shuffle."""
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[perm], dtype=torch.float32), torch.tensor(y[perm])
    half = len(x) // 2
    return (x[:half], y[:half]), (x[half:], y[half:])


def test_real_against_real_is_close_to_one():
    (a, _), (b, _) = digits()
    scores = prdc(a, b)
    assert scores["precision"] > 0.88 and scores["recall"] > 0.88  # 0.913, 0.902
    assert 0.85 < scores["density"] < 1.15 and scores["coverage"] > 0.9  # 0.965, 0.969


def test_a_one_class_generator_keeps_precision_and_loses_recall_and_coverage():
    (real, _), (other, labels) = digits()
    collapsed = other[labels == 3]  # real 3s only: faithful, not diverse
    scores = prdc(real, collapsed)
    assert scores["precision"] > 0.88  # 0.920
    assert scores["recall"] < 0.25 and scores["coverage"] < 0.2  # 0.183, 0.116


def test_too_few_samples_give_no_scores():
    x = torch.randn(5, 4)
    assert prdc(x, torch.randn(50, 4)) == {}  # no 5-neighbourhood in 5 points: not scored


def test_coverage_per_class_shows_the_class_a_generator_misses():
    (real, real_labels), (other, labels) = digits()
    no_sevens = other[labels != 7]  # real digits of every class but 7
    scores = prdc(real, no_sevens, real_labels=real_labels)
    per_class = scores["coverage_per_class"]
    assert len(per_class) == 10
    assert per_class[7] < 0.25  # 7s are covered only where another digit happens to lie close
    assert min(v for c, v in enumerate(per_class) if c != 7) > 0.85
    assert scores["coverage_class_min"] == per_class[7]
    sizes = torch.bincount(real_labels).double()
    weighted = float((torch.tensor(per_class, dtype=torch.float64) * sizes).sum() / sizes.sum())
    assert weighted == pytest.approx(scores["coverage"])  # the classes add up to the whole
    missing = prdc(real, other, real_labels=torch.where(real_labels == 4, 6, real_labels))
    assert missing["coverage_per_class"][4] is None  # no real 4s left to cover: not scored
