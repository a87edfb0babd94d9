"""ganarena.report.significance against scipy.stats and textbook values, and on synthetic seeds.

Fixed inputs: every p-value, interval and adjustment equals an independent computation to 1e-12.
Synthetic runs: variants drawn alike are "not separable" in >= 90 % of seeded trials, variants
3 sd apart with 5 seeds each are separated. Pure arithmetic: the whole file takes ~1 s.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ganarena.report import significance as sig

A = [13.2, 15.9, 12.4, 14.8, 16.1]
B = [17.5, 16.2, 19.9, 18.4]
T95 = sig.Interval("t", 0.95)


def welch_by_hand(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df, 2 * stats.t.sf(abs(t), df), math.sqrt(va + vb)


def test_welch_p_statistic_and_difference_interval():
    res = sig.compare_pair(A, B, "welch", T95)
    t, df, p, se = welch_by_hand(A, B)
    assert res.statistic == pytest.approx(t, rel=1e-12)
    assert res.p == pytest.approx(p, rel=1e-12)
    assert res.p == pytest.approx(stats.ttest_ind(A, B, equal_var=False).pvalue, rel=1e-12)
    diff = np.mean(A) - np.mean(B)
    half = stats.t.ppf(0.975, df) * se
    assert res.diff == pytest.approx(diff, rel=1e-12)
    assert res.ci == pytest.approx((diff - half, diff + half), rel=1e-12)
    # 90 % interval: narrower, same centre
    res90 = sig.compare_pair(A, B, "welch", sig.Interval("t", 0.90))
    half90 = stats.t.ppf(0.95, df) * se
    assert res90.ci == pytest.approx((diff - half90, diff + half90), rel=1e-12)


def test_mann_whitney_against_scipy_and_exact_values():
    res = sig.compare_pair(A, B, "mannwhitney", T95)
    ref = stats.mannwhitneyu(A, B, alternative="two-sided")
    assert (res.statistic, res.p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    # Fully separated samples: the exact two-sided p is 2 / C(n_a + n_b, n_a).
    assert sig.compare_pair([1, 2, 3], [4, 5, 6], "mannwhitney", T95).p == pytest.approx(
        2 / math.comb(6, 3), rel=1e-12
    )
    assert sig.min_mannwhitney_p(3, 3) == pytest.approx(0.1, rel=1e-12)
    assert sig.min_mannwhitney_p(5, 5) == pytest.approx(2 / 252, rel=1e-12)


def test_t_interval_of_a_mean():
    lo, hi = sig.mean_interval(A, T95)
    x = np.asarray(A)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    assert (lo, hi) == (pytest.approx(x.mean() - half, rel=1e-12),
                        pytest.approx(x.mean() + half, rel=1e-12))  # fmt: skip
    assert sig.mean_interval([3.0], T95) == (pytest.approx(math.nan, nan_ok=True),) * 2
    assert sig.mean_interval([2.0, 2.0, 2.0], T95) == (2.0, 2.0)  # no spread: the point


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_bootstrap_interval_is_scipys_seeded_bootstrap(method):
    ci = sig.Interval("bootstrap", 0.9, method, seed=7)
    got = sig.mean_interval(A, ci)
    ref = stats.bootstrap(
        (np.asarray(A),), np.mean, confidence_level=0.9, n_resamples=9999,
        method="BCa" if method == "bca" else "percentile", rng=np.random.default_rng(7),
    ).confidence_interval  # fmt: skip
    assert got == (pytest.approx(ref.low, rel=1e-12), pytest.approx(ref.high, rel=1e-12))
    assert sig.mean_interval(A, ci) == got  # seeded: the same numbers every time
    assert sig.mean_interval(A, sig.Interval("bootstrap", 0.9, method, seed=8)) != got
    lo, hi = got
    assert lo < np.mean(A) < hi
    # The difference of two means: a two-sample bootstrap, resampled independently.
    pair = sig.compare_pair(A, B, "welch", ci).ci
    ref2 = stats.bootstrap(
        (np.asarray(A), np.asarray(B)), lambda a, b, axis=-1: a.mean(axis) - b.mean(axis),
        confidence_level=0.9, method="BCa" if method == "bca" else "percentile",
        rng=np.random.default_rng(7),
    ).confidence_interval  # fmt: skip
    assert pair == (pytest.approx(ref2.low, rel=1e-12), pytest.approx(ref2.high, rel=1e-12))


def holm_by_definition(p):
    """Holm: the i-th smallest p times (m - i + 1), made monotone, capped at 1."""
    m, order = len(p), np.argsort(p, kind="stable")
    out = np.empty(m)
    for k, i in enumerate(order):
        out[i] = min(1.0, max((m - j) * p[order[j]] for j in range(k + 1)))
    return out


def test_holm_adjustment():
    got = sig.holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12, abs=1e-15)
    assert sig.holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    # An untested pair (NaN) is not a hypothesis: m counts the others only.
    got = sig.holm([0.01, math.nan, 0.02])
    assert got[0] == pytest.approx(0.02, rel=1e-12) and got[2] == pytest.approx(0.02, rel=1e-12)
    assert math.isnan(got[1])
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=int(rng.integers(1, 12)))
        assert sig.holm(list(p)) == pytest.approx(list(holm_by_definition(p)), rel=1e-12)


def test_hedges_g():
    x, y = np.asarray(A), np.asarray(B)
    df = len(x) + len(y) - 2
    sp = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / df)
    j = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    assert sig.hedges_g(A, B) == pytest.approx(j * (x.mean() - y.mean()) / sp, rel=1e-12)
    assert j == pytest.approx(1 - 3 / (4 * df - 1), abs=2e-3)  # the usual approximation
    assert sig.pooled_sd(A, B) == pytest.approx(sp, rel=1e-12)


def test_power_and_seeds_needed_match_the_textbook():
    # Cohen (1988): d = 0.5 needs 64 per group for 80 % power at alpha 0.05 (two-sided);
    # d = 0.8 needs 26 and d = 1.0 needs 17.
    assert sig.t_test_power(0.5, 64, 0.05) == pytest.approx(0.8015, abs=1e-4)
    base = np.array([-1.0, 1.0] * 50)
    sd = base.std(ddof=1)
    for d, n in ((0.5, 64), (0.8, 26), (1.0, 17)):
        assert sig.seeds_needed(base, base + d * sd, 0.05) == n, d  # effect d at pooled sd sd
    assert sig.seeds_needed([1.0, 2.0], [1.0, 2.0], 0.05) is None  # equal means
    assert sig.seeds_needed([1.0, 1.0], [2.0, 2.0], 0.05) == 2  # no spread
    tiny = sig.seeds_needed([0.0, 1.0, 2.0], [0.0001, 1.0001, 2.0001], 0.05)
    assert tiny == sig.MAX_SEEDS + 1


def test_welch_power_matches_a_simulation():
    """The noncentral-t power of Welch's test with unequal sds, against 20,000 seeded trials."""
    rng = np.random.default_rng(0)
    for diff, sd_a, sd_b, n, alpha in ((3.0, 1.0, 3.0, 4, 0.05), (2.0, 0.5, 2.0, 6, 0.01)):
        a = rng.normal(0, sd_a, size=(20_000, n))
        b = rng.normal(diff, sd_b, size=(20_000, n))
        hits = (stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < alpha).mean()
        assert sig.welch_power(diff, sd_a, sd_b, n, alpha) == pytest.approx(hits, abs=0.02)
    assert sig.welch_power(0.7, 2.0, 2.0, 9, 0.05) == pytest.approx(
        sig.t_test_power(0.35, 9, 0.05), rel=1e-12
    )


def test_rank_ranges_share_ranks_between_unseparated_variants():
    assert sig.rank_ranges(3, set()) == [(1, 3)] * 3
    assert sig.rank_ranges(3, {(0, 2), (1, 2)}) == [(1, 2), (1, 2), (3, 3)]
    # Not transitive: 0 beats 2, but neither is separated from 1.
    assert sig.rank_ranges(3, {(0, 2)}) == [(1, 2), (1, 3), (2, 3)]
    assert [sig.rank_label(*r) for r in sig.rank_ranges(2, {(0, 1)})] == ["1", "2"]
    assert sig.rank_label(1, 3) == "1–3"


def test_analyse_ranks_with_ties_and_skips_empty_variants():
    an = sig.analyse([[1, 2, 3], [1.5, 2.5, 3.1], [10, 11, 12], []], False, "welch", T95, 0.05)
    assert an.ranks == [(1, 2), (1, 2), (3, 3), None]
    assert set(an.pairs) == {(0, 1), (0, 2), (1, 2)}  # no pair with the empty variant
    raw = [stats.ttest_ind(*pair, equal_var=False).pvalue
           for pair in (([1, 2, 3], [1.5, 2.5, 3.1]), ([1, 2, 3], [10, 11, 12]),
                        ([1.5, 2.5, 3.1], [10, 11, 12]))]  # fmt: skip
    assert list(an.adjusted.values()) == pytest.approx(list(holm_by_definition(raw)), rel=1e-12)
    assert an.better == {(0, 2), (1, 2)}
    # Higher is better: the same numbers, the other way round.
    assert sig.analyse([[10, 11, 12], [1, 2, 3]], True, "welch", T95, 0.05).better == {(0, 1)}


@pytest.mark.parametrize("test", ["welch", "mannwhitney"])
def test_variants_drawn_alike_are_not_separable(test):
    rng = np.random.default_rng(2024)
    trials = 200
    apart = sum(
        sig.analyse(rng.normal(10, 2, size=(2, 5)).tolist(), False, test, T95, 0.05).better != set()
        for _ in range(trials)
    )
    assert apart / trials <= 0.10  # expected ~5 %: the test's size
    # Three alike: Holm keeps the chance of any false separation at about alpha too.
    apart3 = sum(
        bool(sig.analyse(rng.normal(0, 1, size=(3, 5)).tolist(), False, test, T95, 0.05).better)
        for _ in range(trials)
    )
    assert apart3 / trials <= 0.10


def test_variants_three_sd_apart_with_five_seeds_are_separated():
    rng = np.random.default_rng(7)
    trials = 200
    hits = 0
    for _ in range(trials):
        a, b = rng.normal(0, 1, 5), rng.normal(3, 1, 5)
        an = sig.analyse([a.tolist(), b.tolist()], False, "welch", T95, 0.05)
        hits += an.better == {(0, 1)}
    assert hits / trials >= 0.95  # Welch's power here is ~0.99
    # And one fixed draw, through the whole ranking.
    a, b = [0.3, -0.8, 1.1, 0.2, -0.5], [3.4, 2.1, 3.9, 2.8, 3.3]
    an = sig.analyse([a, b], False, "welch", T95, 0.05)
    assert an.ranks == [(1, 1), (2, 2)] and an.adjusted[(0, 1)] < 0.001


def test_no_spread_on_either_side_is_the_limit_of_the_t_test():
    same = sig.compare_pair([1.0, 1.0, 1.0], [1.0, 1.0], "welch", T95)
    assert (same.p, same.statistic, same.ci) == (1.0, 0.0, (0.0, 0.0))
    apart = sig.compare_pair([1.0, 1.0, 1.0], [2.0, 2.0], "welch", T95)
    assert apart.p == 0.0 and apart.statistic == -math.inf and apart.ci == (-1.0, -1.0)
    one = sig.compare_pair([1.0], [2.0, 3.0], "welch", T95)
    assert math.isnan(one.p) and one.diff == -1.5  # one seed: a difference, no test
