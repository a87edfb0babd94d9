"""Statistics for comparing variants over seeds: intervals, pairwise tests, Holm, ranks, power.

Pure functions of plain lists of floats; scipy.stats does every distribution (Welch's t-test,
Mann-Whitney U, t and noncentral-t quantiles, the bootstrap). Used by ganarena-compare.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TESTS = {"welch": "Welch's t-test", "mannwhitney": "Mann–Whitney U test"}
INTERVALS = ("t", "bootstrap")
BOOTSTRAP_METHODS = ("bca", "percentile")
POWER = 0.8  # the power of the seeds-needed estimate
MAX_SEEDS = 100_000  # above this, "more than" is all the estimate says
N_RESAMPLES = 9999  # scipy's default


@dataclass(frozen=True)
class Interval:
    """How a confidence interval is computed: kind t|bootstrap, at `level`, seeded."""

    kind: str = "t"
    level: float = 0.95
    method: str = "bca"  # bootstrap only: bca | percentile
    seed: int = 0

    def describe(self) -> str:
        pct = f"{100 * self.level:g} %"
        if self.kind == "t":
            return f"{pct} t-interval"
        name = "BCa" if self.method == "bca" else "percentile"
        return f"{pct} {name} bootstrap ({N_RESAMPLES} resamples, seed {self.seed})"


def _array(values: Sequence[float]) -> np.ndarray:
    """The finite values as float64 (NaN: a run without a score)."""
    import numpy as np  # here, not at import: ganarena-compare --help stays light

    return np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """The pooled standard deviation sqrt(((n_a-1) s_a² + (n_b-1) s_b²) / (n_a + n_b - 2))."""
    x, y = _array(a), _array(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    df = len(x) + len(y) - 2
    return math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / df)


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Hedges' g of mean(a) - mean(b): Cohen's d on the pooled sd, times the exact small-sample
    correction J = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2)), df = n_a + n_b - 2."""
    from scipy.special import gammaln

    x, y = _array(a), _array(b)
    df = len(x) + len(y) - 2
    if len(x) < 2 or len(y) < 2:
        return math.nan
    pooled = pooled_sd(x, y)
    diff = float(x.mean() - y.mean())
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    j = math.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    return j * diff / pooled


def mean_interval(values: Sequence[float], ci: Interval) -> tuple[float, float]:
    """The confidence interval of the mean of `values`; NaNs below two values. No spread: the
    interval is the point itself (scipy would return NaN)."""
    x = _array(values)
    if len(x) < 2:
        return math.nan, math.nan
    if x.max() == x.min():
        return float(x[0]), float(x[0])
    if ci.kind == "t":
        from scipy import stats

        sem = float(x.std(ddof=1) / math.sqrt(len(x)))
        lo, hi = stats.t.interval(ci.level, len(x) - 1, loc=float(x.mean()), scale=sem)
        return float(lo), float(hi)
    return _bootstrap((x,), lambda s, axis=-1: s.mean(axis=axis), ci)


def _bootstrap(samples: tuple, statistic, ci: Interval) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    with warnings.catch_warnings():  # BCa on a handful of seeds warns of degenerate resamples
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            samples,
            statistic,
            n_resamples=N_RESAMPLES,
            confidence_level=ci.level,
            method="BCa" if ci.method == "bca" else "percentile",
            vectorized=True,
            rng=np.random.default_rng(ci.seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else (math.nan, math.nan)


@dataclass
class PairTest:
    """One test of variant a against variant b (a - b)."""

    statistic: float = math.nan
    p: float = math.nan  # NaN: no test possible (fewer than two values on a side)
    diff: float = math.nan  # mean(a) - mean(b)
    ci: tuple[float, float] = (math.nan, math.nan)  # of the difference of means
    g: float = math.nan  # Hedges' g
    pooled_sd: float = math.nan
    seeds_needed: int | None = None  # per variant, at the observed spread (set by analyse)


def compare_pair(a: Sequence[float], b: Sequence[float], test: str, ci: Interval) -> PairTest:
    """`test` (welch | mannwhitney, two-sided) of a against b, the difference of the means with
    its interval (Welch's t-interval for ci.kind t, else a two-sample bootstrap) and Hedges' g."""
    x, y = _array(a), _array(b)
    out = PairTest()
    if len(x) == 0 or len(y) == 0:
        return out
    out.diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return out
    out.g = hedges_g(x, y)
    out.pooled_sd = pooled_sd(x, y)
    flat = x.max() == x.min() and y.max() == y.min()
    with warnings.catch_warnings():  # one side without spread: scipy warns, the result stands
        warnings.simplefilter("ignore", RuntimeWarning)
        _test(out, x, y, test, ci, flat)
    return out


def _test(out: PairTest, x: np.ndarray, y: np.ndarray, test: str, ci: Interval, flat: bool):
    """Fill out's statistic, p and difference interval (x, y: two or more values each)."""
    from scipy import stats

    welch = None if flat else stats.ttest_ind(x, y, equal_var=False)
    if test == "mannwhitney":
        res = stats.mannwhitneyu(x, y, alternative="two-sided")
        out.statistic, out.p = float(res.statistic), float(res.pvalue)
    elif welch is None:  # no spread on either side: the limit of the t-test (scipy: NaN)
        out.statistic = 0.0 if out.diff == 0 else math.copysign(math.inf, out.diff)
        out.p = 1.0 if out.diff == 0 else 0.0
    else:
        out.statistic, out.p = float(welch.statistic), float(welch.pvalue)
    if welch is None:
        out.ci = (out.diff, out.diff)
    elif ci.kind == "t":
        low, high = welch.confidence_interval(ci.level)
        out.ci = (float(low), float(high))
    else:
        out.ci = _bootstrap((x, y), lambda s, t, axis=-1: s.mean(axis=axis) - t.mean(axis=axis), ci)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.
    NaN entries (no test) are not hypotheses: they stay NaN and do not count in m."""
    tested = [i for i, p in enumerate(pvalues) if math.isfinite(p)]
    order = sorted(tested, key=lambda i: pvalues[i])
    m = len(order)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


def t_test_power(d: float, n: int, alpha: float) -> float:
    """Power of the two-sided two-sample t-test (n per group, equal variances) at effect d."""
    return welch_power(abs(d), 1.0, 1.0, n, alpha)


def welch_power(diff: float, sd_a: float, sd_b: float, n: int, alpha: float) -> float:
    """Power of the two-sided Welch test with n per group at a true difference `diff` and these
    sds: noncentral t with ncp = diff / sqrt((sd_a² + sd_b²) / n) on the Welch–Satterthwaite
    df (n - 1)(sd_a² + sd_b²)² / (sd_a⁴ + sd_b⁴). Equal sds: the pooled t-test's power exactly."""
    from scipy import stats

    va, vb = sd_a**2, sd_b**2
    df = (n - 1) * (va + vb) ** 2 / (va**2 + vb**2)
    ncp = abs(diff) / math.sqrt((va + vb) / n)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def seeds_needed(a: Sequence[float], b: Sequence[float], alpha: float) -> int | None:
    """Seeds per variant for which a two-sided Welch test at `alpha` has POWER to separate means
    as far apart as a's and b's, at their observed sds. None: the means are equal (no number of
    seeds separates them); MAX_SEEDS + 1: more than MAX_SEEDS."""
    from scipy import stats

    x, y = _array(a), _array(b)
    if len(x) < 2 or len(y) < 2:
        return None
    diff, sa, sb = abs(float(x.mean() - y.mean())), float(x.std(ddof=1)), float(y.std(ddof=1))
    if diff == 0:
        return None
    if sa == 0 and sb == 0:
        return 2

    def power(n: int) -> float:
        return welch_power(diff, sa, sb, n, alpha)

    # Start from the normal approximation (z_a + z_b)² (sd_a² + sd_b²) / diff², walk to the t's.
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)
    guess = z**2 * (sa**2 + sb**2) / diff**2
    if guess > MAX_SEEDS:
        return MAX_SEEDS + 1
    n = max(2, math.ceil(guess))
    while n > 2 and power(n - 1) >= POWER:
        n -= 1
    while power(n) < POWER:
        n += 1
    return n if n <= MAX_SEEDS else MAX_SEEDS + 1


def min_mannwhitney_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact Mann–Whitney U test can reach with these sizes."""
    from scipy import stats

    if n_a < 1 or n_b < 1:
        return math.nan
    return float(stats.mannwhitneyu(range(n_a), range(n_a, n_a + n_b)).pvalue)


def rank_ranges(n: int, better: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """(best, worst) possible rank of each of n items, given the pairs (i, j) where i is shown
    better than j: i cannot rank above anything shown better than it, nor below anything shown
    worse. Items no test separates share ranks (1–2)."""
    out = []
    for i in range(n):
        above = sum((j, i) in better for j in range(n))
        below = sum((i, j) in better for j in range(n))
        out.append((1 + above, n - below))
    return out


def rank_label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}–{hi}"


@dataclass
class Analysis:
    """Every variant's mean and interval, every pair's test (i < j) with its Holm-adjusted p,
    and the rank range of each variant (None: no value to rank)."""

    n: list[int]
    means: list[float]
    stds: list[float]
    intervals: list[tuple[float, float]]
    pairs: dict[tuple[int, int], PairTest]
    adjusted: dict[tuple[int, int], float]
    better: set[tuple[int, int]]  # (i, j): i is separated from j and better
    ranks: list[tuple[int, int] | None]

    def separated(self, i: int, j: int) -> bool:
        return (i, j) in self.better or (j, i) in self.better


def analyse(
    samples: Sequence[Sequence[float]], higher: bool, test: str, ci: Interval, alpha: float
) -> Analysis:
    """Test every pair of samples, adjust across the pairs (Holm) and rank with ties: a pair is
    separated when its adjusted p < alpha, the better side by the direction of its means."""
    xs = [_array(s) for s in samples]
    n = [len(x) for x in xs]
    means = [float(x.mean()) if len(x) else math.nan for x in xs]
    stds = [float(x.std(ddof=1)) if len(x) > 1 else math.nan for x in xs]
    pairs = {
        (i, j): compare_pair(xs[i], xs[j], test, ci)
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if n[i] and n[j]
    }
    keys = list(pairs)
    adjusted = dict(zip(keys, holm([pairs[k].p for k in keys]), strict=True))
    # Seeds that would separate each pair at Bonferroni's alpha / m: Holm's strictest step.
    m = max(1, sum(math.isfinite(p) for p in adjusted.values()))
    for i, j in keys:
        pairs[(i, j)].seeds_needed = seeds_needed(xs[i], xs[j], alpha / m)
    better = set()
    for (i, j), p in adjusted.items():
        diff = pairs[(i, j)].diff
        if math.isfinite(p) and p < alpha and diff != 0:
            better.add((i, j) if (diff > 0) == higher else (j, i))
    scored = [i for i in range(len(xs)) if n[i]]
    local = {i: k for k, i in enumerate(scored)}
    ranked = rank_ranges(len(scored), {(local[i], local[j]) for i, j in better})
    ranks: list[tuple[int, int] | None] = [None] * len(xs)
    for i, r in zip(scored, ranked, strict=True):
        ranks[i] = r
    return Analysis(
        n, means, stds, [mean_interval(x, ci) for x in xs], pairs, adjusted, better, ranks
    )
