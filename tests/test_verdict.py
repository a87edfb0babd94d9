"""The one-sentence verdict at the end of a run: thresholds from ganarena/report/verdict.py."""

from __future__ import annotations

import math

import pytest

from ganarena.report import verdict as v

DIGITS = {"backbone": "domain", "num_classes": 10, "real_floor_fid": 5.0}


def scores(**kw):
    return {"fid": 9.0, "is": 9.1, "modes_covered": 10, "class_kl": 0.01} | kw


def test_healthy_needs_every_threshold():
    word, text = v.verdict("completed", scores(), DIGITS)
    assert word == "healthy" and "looks healthy" in text
    assert "final FID 9 (real-vs-real floor 5), IS 9.10, 10/10 modes covered" in text


def test_a_class_restricted_run_is_judged_by_the_classes_its_data_has():
    """dataset.class_counts={5:100,...,9:100}: the reference shows 5 of the classifier's 10."""
    five = DIGITS | {"real_classes": 5}
    word, text = v.verdict("completed", scores(modes_covered=5, **{"is": 4.5}), five)
    assert word == "healthy" and "5/5 modes covered" in text  # IS threshold 0.85 x 5
    word, text = v.verdict("completed", scores(modes_covered=2, **{"is": 2.1}), five)
    assert word == "collapsed" and "2/5 modes" in text


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({"modes_covered": 9}, "1 classes missing"),
        ({"class_kl": v.HEALTHY_CLASS_KL + 0.001}, "class KL above 0.05"),
        ({"is": 0.85 * 10 - 0.01}, "IS below 8.5"),
        ({"fid": 2 * 5.0 + 0.01}, "FID above 2x the floor"),
    ],
)
def test_partial_names_what_is_missing(change, missing):
    word, text = v.verdict("completed", scores(**change), DIGITS)
    assert word == "partial" and missing in text


def test_only_fid_missing_asks_for_more_steps_not_another_recipe():
    word, text = v.verdict("completed", scores(fid=12.0), DIGITS)
    assert word == "partial" and "FID above 2x the floor" in text
    assert "raise trainer.max_steps" in text and "default recipe" not in text


def test_at_the_thresholds_is_still_healthy():
    at = scores(fid=10.0, class_kl=v.HEALTHY_CLASS_KL) | {"is": 8.5}
    assert v.verdict("completed", at, DIGITS)[0] == "healthy"


@pytest.mark.parametrize(
    "change", [{"modes_covered": 5}, {"is": 1.99}, {"modes_covered": 1, "is": 1.0}]
)
def test_collapse(change):
    word, text = v.verdict("completed", scores(**change), DIGITS)
    assert word == "collapsed" and "collapsed onto few classes" in text and "try" in text


def test_other_outcomes():
    assert v.verdict("diverged", None, None)[0] == "diverged"
    assert v.verdict("completed", None, None)[0] == "unscored"
    nan_floor = DIGITS | {"real_floor_fid": None}
    word, text = v.verdict("completed", scores(fid=500.0), nan_floor)
    assert word == "healthy" and "floor" not in text  # no floor: judged on classes and IS


def test_mixtures_are_judged_by_modes_and_quality():
    grid = {"backbone": "mixture", "n_modes": 25}
    assert (
        v.verdict("completed", {"fid": 0.1, "modes_covered": 25, "high_quality": 0.7}, grid)[0]
        == "healthy"
    )
    assert (
        v.verdict("completed", {"fid": 0.1, "modes_covered": 25, "high_quality": 0.05}, grid)[0]
        == "partial"
    )
    assert (
        v.verdict("completed", {"fid": 3.0, "modes_covered": 3, "high_quality": math.nan}, grid)[0]
        == "collapsed"
    )


def test_stacked_mnist_runs_are_judged_on_their_1000_modes():
    from ganarena.metrics import registry as M
    from ganarena.report.verdict import verdict

    settings = {
        "scored_as": "stacked_digits: the digit classifier on each channel", "modes": 1000,
        "real_floor": {M.MODES_COVERED: 1000, M.MODE_KL: 0.025}, "classifier_accuracy": 0.99,
    }  # fmt: skip
    word, text = verdict("completed", {M.MODES_COVERED: 1, M.MODE_KL: 6.91}, settings)
    assert word == "collapsed" and "1/1000 modes covered" in text and "conditional" not in text
    word, text = verdict("completed", {M.MODES_COVERED: 990, M.MODE_KL: 0.04}, settings)
    assert word == "healthy" and "(real data: 1000/1000, KL 0.025)" in text
    assert verdict("completed", {M.MODES_COVERED: 700, M.MODE_KL: 0.5}, settings)[0] == "partial"
