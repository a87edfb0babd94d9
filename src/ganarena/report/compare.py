"""ganarena-compare: turn a Hydra multirun folder into a paper-style comparison.

Reads every job's metrics.json (and .hydra/config.yaml) and its TensorBoard `val/<metric>`
scalars, groups the jobs into variants (by default model, loss and dataset; the seeds of a variant
are its repetitions) and writes into --out (default: the sweep folder):

  comparison.md / comparison.csv   a verdict sentence (who wins, or that the seeds cannot tell
                                   the two best apart and how many seeds would), then one row
                                   per variant: its rank with ties, mean ± sample std (ddof=1)
                                   over the completed runs of the final and best FID/IS/KID, the
                                   interval of the --metric mean, the number of seeds, diverged
                                   and failed runs, mean wall time and img/s; sorted by --metric;
                                   the shared eval settings in the header; rankings at equal
                                   generator steps, real images and training seconds; the spread
                                   over evaluation seeds where ganarena-eval rescored checkpoints.
                                   With --metric other than fid: comparison_<metric>.md/.csv, so
                                   a second ordering never replaces the first
  comparison_pairs.csv             every pair of variants: the test (--test), p, Holm-adjusted p,
                                   difference of means with its interval, Hedges' g, seeds needed
  <metric>_curves.png              the metric against generator step: mean per variant with the
                                   interval of the mean (--ci, --level) as a band
  <metric>_box.png                 box + strip plot of the final metric per variant over seeds
                                   (the figure style of Lucic et al. 2018), mean ± interval bars

The statistics are in ganarena.report.significance. The markdown is printed to stdout. Runs without a
metrics.json are listed as failed, never skipped; runs scored with different evaluation settings
are refused unless --allow-mixed-eval.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
import sys
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from ganarena.cli import EXIT_USER_ERROR
from ganarena.errors import GanarenaError
from ganarena.metrics import registry
from ganarena.report import significance as sig
from ganarena.run.files import atomic_write
from ganarena.run.records import RUN_KEYS, STATUSES, select

log = logging.getLogger("ganarena.report.compare")

PROG = "ganarena-compare"
DEFAULT_GROUP_BY = ("model", "loss", "dataset")
# From the metric registry: always tabulated; --metric adds another final/* key
METRICS = tuple(n for n, s in registry.BUILTIN.items() if s.compare == "always")
PRDC = tuple(n for n, s in registry.BUILTIN.items() if s.compare == "present")  # when reported
HIGHER_IS_BETTER = registry.HIGHER_IS_BETTER  # built-ins; runs declare plug-ins (metrics.json)
LABELS = {n: s.label for n, s in registry.BUILTIN.items()}
# metrics.json `config` keys and where the same value lives in .hydra/config.yaml (used when a
# job left no metrics.json, and to name the config path a swept override changes).
SUMMARY_KEYS = {name: path for name, (path, _) in RUN_KEYS.items()}
MISSING_NOTE = "no metrics.json (the job crashed, was killed, or is still running)"
_ABSENT = object()


class CompareError(GanarenaError):
    """A sweep folder or option that ganarena-compare cannot work with."""


# -- reading a sweep ------------------------------------------------------------------------------
@dataclass
class Run:
    """One job folder of a sweep."""

    path: Path
    name: str  # the job folder relative to its sweep folder, e.g. "3"
    status: str  # completed | diverged | failed | interrupted | refused
    note: str = ""  # why a run counts as failed, when metrics.json does not say
    metrics: dict = field(default_factory=dict)
    config: DictConfig | None = None  # .hydra/config.yaml (unresolved)
    overrides: dict[str, str] = field(default_factory=dict)  # .hydra/overrides.yaml
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """A run setting: a metrics.json `config` key or a dotted config path; _ABSENT if none."""
        summary = self.metrics.get("config") or {}
        if key in summary:
            return summary[key]
        path = SUMMARY_KEYS.get(key, key)
        if self.config is None:
            return _ABSENT
        value = select(self.config, path, default=_ABSENT)
        if value is _ABSENT and key == "dataset_resolved":
            return self.value("dataset")
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=False)
        return value

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def final(self, metric: str) -> float:
        return _finite((self.metrics.get("final") or {}).get(metric))

    def best(self, metric: str) -> float:
        """metrics.json `best` if it holds the metric, else the best point of the val/<metric>
        curve, else the final score (a run evaluated once)."""
        best = self.metrics.get("best") or {}
        value = best.get(metric)
        if isinstance(value, dict):
            value = value.get("value")
        if not math.isnan(_finite(value)):
            return _finite(value)
        points = [v for _, v in self.curves.get(metric, []) if math.isfinite(v)]
        if points:
            return max(points) if registry.higher_is_better(metric, self.declared) else min(points)
        return self.final(metric)

    @property
    def declared(self) -> dict:
        """metrics.json "metrics": the declarations (direction, label) of the metrics it logged."""
        d = self.metrics.get("metrics")
        return d if isinstance(d, dict) else {}


def declarations(runs: Sequence[Run]) -> dict:
    """The metric declarations of the runs (plug-ins included; the first run's wins)."""
    out: dict = {}
    for r in runs:
        for k, v in r.declared.items():
            out.setdefault(k, v)
    return out


def _higher(metric: str, runs: Sequence[Run]) -> bool:
    return registry.higher_is_better(metric, declarations(runs))


def _label(metric: str, runs: Sequence[Run]) -> str:
    return registry.label(metric, declarations(runs))


def _runs_of(variants: Sequence[Variant]) -> list[Run]:
    return [r for v in variants for r in v.runs]


def _finite(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return math.nan
    return float(x)


def _is_job(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "metrics.json").is_file()


def _job_dirs(root: Path, depth: int = 3) -> list[Path]:
    """Job folders below `root` (Hydra's sweep.subdir may nest them), not descending into jobs."""
    found = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if _is_job(child):
            found.append(child)
        elif depth > 1:
            found += _job_dirs(child, depth - 1)
    return found


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.replace("\\", "/").split("/"))


def _load_overrides(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_text())  # plain strings: no interpolation resolving
    except (OSError, yaml.YAMLError):  # overrides only improve a hint; a bad file is ignored
        return {}
    out = {}
    for item in items if isinstance(items, list) else []:
        key, sep, value = str(item).partition("=")
        if sep:
            out[key.lstrip("+~")] = value
    return out


def load_run(path: Path, name: str) -> Run:
    run = Run(path=path, name=name, status="failed")
    hydra_dir = path / ".hydra"
    if (hydra_dir / "config.yaml").is_file():
        try:
            run.config = OmegaConf.load(hydra_dir / "config.yaml")
        except Exception as e:  # noqa: BLE001 - a broken config only costs the grouping values
            log.warning("%s: unreadable .hydra/config.yaml (%s)", path, e)
    run.overrides = _load_overrides(hydra_dir / "overrides.yaml")
    metrics_path = path / "metrics.json"
    if not metrics_path.is_file():
        run.note = MISSING_NOTE
        return run
    try:
        metrics = json.loads(metrics_path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        run.note = f"unreadable metrics.json ({e})"
        return run
    run.metrics = metrics
    status = metrics.get("status")
    run.status = status if status in STATUSES else "failed"
    if status not in STATUSES:
        run.note = f"unknown status {status!r} in metrics.json"
    elif status == "refused":
        run.note = str(metrics.get("reason") or "refused before training")
    return run


def find_runs(sweeps: Sequence[Path]) -> list[Run]:
    """All job folders of the given sweep folders, or CompareError saying what is wrong."""
    runs = []
    for sweep in sweeps:
        if not sweep.exists():
            raise CompareError(
                f"'{sweep}' does not exist. Pass the folder of a multirun (ganarena-train -m ...), "
                "e.g. outputs/train/multiruns/<date>_<time>/."
            )
        if not sweep.is_dir():
            raise CompareError(
                f"'{sweep}' is a file, not a sweep folder. Pass the folder of a multirun, "
                "e.g. outputs/train/multiruns/<date>_<time>/."
            )
        if _is_job(sweep):
            raise CompareError(
                f"'{sweep}' is a single run folder, not a sweep: it has its own .hydra/ or "
                "metrics.json. Pass the multirun folder that holds the job folders "
                "(outputs/train/multiruns/<date>_<time>/), or start a sweep with ganarena-train -m."
            )
        jobs = _job_dirs(sweep)
        if not jobs:
            hydra_file = next(
                (
                    f
                    for f in ("multirun.yaml", "optimization_results.yaml")
                    if (sweep / f).is_file()
                ),
                None,
            )
            what = (
                f"has a {hydra_file} but no job folders (<job>/.hydra/config.yaml or "
                "<job>/metrics.json): the sweep launched no job yet"
                if hydra_file
                else "is not a Hydra sweep folder: it has no multirun.yaml and no job folders "
                "(<job>/.hydra/config.yaml or <job>/metrics.json)"
            )
            raise CompareError(
                f"'{sweep}' {what}. Pass the folder printed by ganarena-train -m "
                "(outputs/train/multiruns/<date>_<time>/)."
            )
        prefix = f"{sweep.name}/" if len(sweeps) > 1 else ""
        for job in jobs:
            runs.append(load_run(job, prefix + job.relative_to(sweep).as_posix()))
    if not any(r.completed for r in runs):
        raise CompareError(
            f"None of the {len(runs)} runs in {', '.join(map(str, sweeps))} completed "
            f"({_status_counts(runs)}), so there is nothing to compare. {_what_happened(runs)}"
        )
    return sorted(runs, key=lambda r: _natural(r.name))


# What each way of not completing means and what to do about it (the "nothing completed" error).
STATUS_ADVICE = {
    "interrupted": "{n} stopped on a signal (Ctrl-C, SIGTERM, a SLURM time limit or preemption) "
    "and kept checkpoints/last.ckpt: resume them with ganarena-train -m <same overrides> "
    "hydra.sweep.dir=<this sweep> ckpt_path=auto",
    "diverged": "{n} diverged (NaN/inf losses): try lower learning rates or another loss",
    "refused": "{n} refused before training: metrics.json 'reason' names the setting to fix",
    "failed": "{n} failed: the error is at the end of each job's train.log",
    "missing": "{n} left no metrics.json (crashed, killed, or still running): see each job's "
    "train.log, or wait for the sweep to finish",
}


def _what_happened(runs: Sequence[Run]) -> str:
    """One clause per way the runs ended, with its remedy."""
    counts: dict[str, int] = defaultdict(int)
    for r in runs:
        counts["missing" if r.note == MISSING_NOTE else r.status] += 1
    parts = [
        text.format(n=f"{counts[status]} run{'s' if counts[status] > 1 else ''}")
        for status, text in STATUS_ADVICE.items()
        if counts.get(status)
    ]
    return "; ".join(parts) + "."


def _status_counts(runs: Sequence[Run]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for r in runs:
        counts["failed: no metrics.json" if r.note == MISSING_NOTE else r.status] += 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def read_curves(run: Run, metrics: Sequence[str]) -> None:
    """Fill run.curves[m] with the (generator step, value) points of TensorBoard's val/<m>, from
    the folder metrics.json "tensorboard" names (a sweep job's: <sweep>/tensorboard/<label>)."""
    tb = run.path / str(run.metrics.get("tensorboard") or "tensorboard")
    if not tb.is_dir():
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Keep every scalar point; drop heavy payloads (sample grids) early.
    acc = EventAccumulator(
        str(tb), size_guidance={"scalars": 0, "images": 1, "histograms": 1, "tensors": 1}
    )
    try:
        acc.Reload()
        tags = set(acc.Tags().get("scalars", []))
    except Exception as e:  # noqa: BLE001 - a truncated event file only costs this run's curve
        log.warning("%s: unreadable TensorBoard events (%s)", tb, e)
        return
    for m in metrics:
        if f"val/{m}" in tags:
            points = {e.step: float(e.value) for e in acc.Scalars(f"val/{m}")}  # last write wins
            run.curves[m] = sorted(points.items())


# -- grouping and statistics ------------------------------------------------------------------
def check_group_by(runs: Sequence[Run], keys: Sequence[str]) -> None:
    for key in keys:
        if key in SUMMARY_KEYS:
            continue
        values = [r.value(key) for r in runs]
        present = [v for v in values if v is not _ABSENT]
        if not present:
            raise CompareError(
                f"Unknown --group-by key '{key}'. Valid keys: {', '.join(SUMMARY_KEYS)}, or a "
                "dotted config path present in the jobs' .hydra/config.yaml (e.g. "
                "optim.d.betas, dataset.limit)."
            )
        if any(isinstance(v, dict) for v in present):
            raise CompareError(
                f"--group-by key '{key}' names a config section, not a value. Use a leaf such "
                f"as {key}.<name> (see a job's .hydra/config.yaml), or one of: "
                f"{', '.join(SUMMARY_KEYS)}."
            )


def _label_value(value: Any) -> str:
    if value is _ABSENT or value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_label_value(v) for v in value) + "]"
    return str(value)


@dataclass
class Variant:
    key: tuple[str, ...]  # group-by values, as labels
    runs: list[Run]

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.completed]

    @property
    def n_diverged(self) -> int:
        return sum(r.status == "diverged" for r in self.runs)

    @property
    def n_failed(self) -> int:
        return sum(r.status in ("failed", "interrupted", "refused") for r in self.runs)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the finite values; NaN where undefined."""
    vals = [v for v in values if math.isfinite(v)]
    mean = statistics.fmean(vals) if vals else math.nan
    std = statistics.stdev(vals) if len(vals) >= 2 else math.nan
    return mean, std


def summarize(variant: Variant, metrics: Sequence[str]) -> dict[str, Any]:
    done = variant.completed
    row: dict[str, Any] = {
        "runs": len(variant.runs),
        "seeds": len(done),
        "diverged": variant.n_diverged,
        "failed": variant.n_failed,
    }
    for m in metrics:
        for kind in ("final", "best"):
            vals = [getattr(r, kind)(m) for r in done]
            row[f"{kind}_{m}_mean"], row[f"{kind}_{m}_std"] = mean_std(vals)
    row["wall_s_mean"] = mean_std([_finite(r.metrics.get("wall_s")) for r in done])[0]
    row["imgs_per_s_mean"] = mean_std([_finite(r.metrics.get("imgs_per_s")) for r in done])[0]
    row["seed_values"] = " ".join(_label_value(r.value("seed")) for r in done)
    row["jobs"] = " ".join(r.name for r in variant.runs)
    return row


def group_runs(runs: Sequence[Run], keys: Sequence[str]) -> list[Variant]:
    groups: dict[tuple[str, ...], list[Run]] = defaultdict(list)
    for r in runs:
        groups[tuple(_label_value(r.value(k)) for k in keys)].append(r)
    return [Variant(k, v) for k, v in groups.items()]


def sort_variants(variants: list[Variant], rows: dict, metric: str) -> list[Variant]:
    sign = -1.0 if _higher(metric, _runs_of(variants)) else 1.0

    def key(v: Variant):
        m = rows[v.key][f"final_{metric}_mean"]
        return (not math.isfinite(m), sign * m if math.isfinite(m) else 0.0, v.key)

    return sorted(variants, key=key)


def mixed_hints(variants: Sequence[Variant], keys: Sequence[str]) -> list[str]:
    """Swept overrides whose values differ inside a variant (other than the seed)."""
    covered = set(keys) | {SUMMARY_KEYS.get(k, k) for k in keys} | {"seed"}
    differing: set[str] = set()
    for v in variants:
        names = {n for r in v.runs for n in r.overrides}
        for n in names - covered:
            if n.startswith("hydra."):
                continue
            if len({r.overrides.get(n) for r in v.runs}) > 1:
                differing.add(n)
    return sorted(differing)


# -- eval settings ------------------------------------------------------------------------------
def _comparable(key: str) -> bool:
    # Timings and cache file locations do not change what a score means.
    return not (key.endswith("_s") or key.endswith("_secs") or key.endswith("_file"))


def eval_settings(runs: Sequence[Run], allow_mixed: bool) -> tuple[dict, dict]:
    """(settings shared by every scored run, {key: {value: [run names]}} for differing ones)."""
    scored = [r for r in runs if isinstance(r.metrics.get("eval"), dict)]
    if not scored:
        return {}, {}
    keys = sorted({k for r in scored for k in r.metrics["eval"]})
    shared, differing = {}, {}
    for k in keys:
        by_value: dict[str, list[str]] = defaultdict(list)
        for r in scored:
            by_value[json.dumps(r.metrics["eval"].get(k), sort_keys=True)].append(r.name)
        if len(by_value) == 1:
            shared[k] = scored[0].metrics["eval"].get(k)
        elif _comparable(k):
            differing[k] = dict(by_value)
    if differing and not allow_mixed:
        parts = []
        for k, by_value in list(differing.items())[:4]:
            vals = "; ".join(
                f"{json.loads(v)!r} in job{'s' if len(names) > 1 else ''} {_names(names)}"
                for v, names in by_value.items()
            )
            parts.append(f"{k}: {vals}")
        raise CompareError(
            "The runs were scored with different evaluation settings, so their scores are not "
            f"comparable ({' | '.join(parts)}). Compare runs evaluated alike (same eval.* "
            "settings, backbone and reference data), re-score them with ganarena-eval, or pass "
            "--allow-mixed-eval to tabulate them anyway (the differences are listed in the header)."
        )
    return shared, differing


def _names(names: Sequence[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (
        f" and {len(names) - limit} more" if len(names) > limit else ""
    )


# -- significance -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatsOptions:
    """How variants are tested and intervals computed (--test, --ci, --level, --bootstrap-*)."""

    test: str = "welch"
    ci: sig.Interval = field(default_factory=sig.Interval)

    @property
    def alpha(self) -> float:
        return 1.0 - self.ci.level

    @property
    def test_name(self) -> str:
        return sig.TESTS[self.test]


def stats_options(
    test: str = "welch",
    ci: str = "t",
    level: float | str = 0.95,
    bootstrap_method: str = "bca",
    bootstrap_seed: int | str = 0,
) -> StatsOptions:
    """The options checked, or a CompareError naming the bad one and the fix."""
    if test not in sig.TESTS:
        raise CompareError(
            f"Unknown --test '{test}'. Use --test welch (Welch's t-test, the default: no equal "
            "variances assumed) or --test mannwhitney (Mann–Whitney U: rank-based, no normality "
            "assumed, but with 3 seeds per variant it cannot reach p < 0.1)."
        )
    if ci not in sig.INTERVALS:
        raise CompareError(
            f"Unknown --ci '{ci}'. Use --ci t (the t-interval of the mean, the default) or --ci "
            "bootstrap (a seeded bootstrap, BCa unless --bootstrap-method percentile)."
        )
    if bootstrap_method not in sig.BOOTSTRAP_METHODS:
        raise CompareError(
            f"Unknown --bootstrap-method '{bootstrap_method}'. Use bca (bias-corrected and "
            "accelerated, the default) or percentile."
        )
    try:
        value = float(level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value < 1.0:
        hint = f" (--level {value / 100:g} for {value:g} %)" if 1.0 < value < 100.0 else ""
        raise CompareError(
            f"--level must be a confidence level strictly between 0 and 1, got '{level}'. Use "
            f"e.g. --level 0.95{hint}; the tests then use α = 1 − level (0.05)."
        )
    try:
        seed = int(str(bootstrap_seed))
    except ValueError:
        seed = -1
    if seed < 0:
        raise CompareError(
            f"--bootstrap-seed must be a non-negative integer, got '{bootstrap_seed}'. Use e.g. "
            "--bootstrap-seed 0 (the same seed gives the same intervals)."
        )
    if ci != "bootstrap" and (bootstrap_method != "bca" or seed != 0):
        given = (
            f"--bootstrap-method {bootstrap_method}" if bootstrap_method != "bca"
            else f"--bootstrap-seed {seed}"
        )  # fmt: skip
        raise CompareError(
            f"{given} does not apply to --ci {ci} (the intervals are t-intervals, no resampling "
            "is drawn), so it would be ignored. Drop it, or add --ci bootstrap."
        )
    return StatsOptions(test, sig.Interval(ci, value, bootstrap_method, seed))


def final_samples(variants: Sequence[Variant], metric: str) -> list[list[float]]:
    """Each variant's final scores over its completed runs (NaN: a completed run without one)."""
    return [[r.final(metric) for r in v.completed] for v in variants]


def _not_completed(v: Variant) -> str:
    """'1 diverged, 2 interrupted' (of the variant's runs), '' when every run completed."""
    counts: dict[str, int] = defaultdict(int)
    for r in v.runs:
        if not r.completed:
            counts[r.status] += 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _unscored(v: Variant, metric: str) -> int:
    return sum(not math.isfinite(r.final(metric)) for r in v.completed)


def _two_best_untestable(names, an: sig.Analysis, best: int, rival: int) -> str:
    few = [names[k] for k in (best, rival) if an.n[k] < 2]
    return (
        f"no test is possible between the two best, **{names[best]}** and **{names[rival]}**: "
        f"{' and '.join(few)} {'has' if len(few) == 1 else 'have'} one scored seed, and a test "
        "needs at least two per variant (run more seeds, e.g. seed=1,2,3,4,5)"
    )


def _seeds_clause(pair: sig.PairTest, opts: StatsOptions, m: int) -> str:
    n = pair.seeds_needed
    if n is None:
        return "their means are equal, so no number of seeds would separate them"
    if n > sig.MAX_SEEDS:
        return f"more than {sig.MAX_SEEDS:,} seeds per variant would be needed to separate them"
    level = f"α/m = {opts.alpha:g}/{m}, Holm's strictest step" if m > 1 else f"α = {opts.alpha:g}"
    return (
        f"at the observed difference ({fmt(abs(pair.diff))}) and spreads, about {n} seeds per "
        f"variant would separate them ({sig.POWER:.0%} power of a two-sided Welch test at {level})"
    )


def verdict(
    variants: Sequence[Variant], an: sig.Analysis, metric: str, label: str, opts: StatsOptions
) -> str:
    """The sentence at the top of comparison.md: who wins, or that the seeds cannot tell."""
    names = _short_labels(variants)
    scored = [i for i in range(len(variants)) if an.n[i]]
    tested = sum(math.isfinite(p) for p in an.adjusted.values())
    head = (
        f"**Verdict** (final {label}; {opts.test_name}, Holm-adjusted over {tested} "
        f"pair{'s' if tested != 1 else ''}, α = {opts.alpha:g}):"
    )
    if not scored:
        return f"**Verdict:** no run has a final {label} score, so no variant can be ranked."
    if len(scored) == 1:
        return (
            f"**Verdict:** only one variant has final {label} scores ({names[scored[0]]}), "
            "so there is nothing to compare it with." + _verdict_notes(variants, an, scored)
        )
    best = scored[0]
    rivals = [j for j in scored[1:] if not an.separated(best, j)]
    if not rivals:
        worst = max(an.adjusted[(best, j)] for j in scored[1:])
        extreme = "highest" if _higher(metric, _runs_of(variants)) else "lowest"
        text = (
            f"{head} **{names[best]}** wins: its mean ({fmt(an.means[best])}) is the {extreme} "
            "and the seeds separate it from every other variant (adjusted p ≤ "
            f"{_p(worst)})"
        )
        involved = [best]
    elif an.n[best] < 2 or an.n[rivals[0]] < 2:
        text = f"{head} " + _two_best_untestable(names, an, best, rivals[0])
        involved = [best, rivals[0]]
    else:
        rival = rivals[0]
        pair, p = an.pairs[(best, rival)], an.adjusted[(best, rival)]
        text = (
            f"{head} the seeds cannot tell **{names[best]}** ({fmt(an.means[best])}) and "
            f"**{names[rival]}** ({fmt(an.means[rival])}) apart (adjusted p = {_p(p)})"
        )
        share = sum(r is not None and r[0] == 1 for r in an.ranks)
        if share > 2:
            text += f"; {share} variants share rank 1"
        text += "; " + _seeds_clause(pair, opts, tested) + _mw_floor(an, best, rival, opts)
        involved = [best, rival]
    return text + "." + _verdict_notes(variants, an, involved)


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _mw_floor(an: sig.Analysis, i: int, j: int, opts: StatsOptions) -> str:
    if opts.test != "mannwhitney":
        return ""
    floor = sig.min_mannwhitney_p(an.n[i], an.n[j])
    if floor < opts.alpha:
        return ""
    return (
        f" (with {an.n[i]} and {an.n[j]} seeds the Mann–Whitney test's smallest possible p is "
        f"{_p(floor)}, so it cannot separate them at α = {opts.alpha:g}: run more seeds or use "
        "--test welch)"
    )


def _verdict_notes(variants, an: sig.Analysis, involved: Sequence[int]) -> str:
    """A second sentence on the runs that are in no mean: never dropped without a word."""
    names = _short_labels(variants)
    notes = [
        f"{names[i]} {_not_completed(variants[i])} of {len(variants[i].runs)} runs"
        for i in involved
        if _not_completed(variants[i])
    ]
    unranked = [
        f"{names[i]} ({_not_completed(v) or 'no score'})"
        for i, v in enumerate(variants)
        if not an.n[i]
    ]
    text = f" Not in the means above: {'; '.join(notes)}." if notes else ""
    if unranked:
        text += f" Not ranked, no scored run: {_names(unranked)}."
    return text


def pair_rows(
    variants: Sequence[Variant], an: sig.Analysis, metric: str, opts: StatsOptions, view: str
) -> list[dict[str, Any]]:
    """comparison_pairs.csv rows: every pair of variants, tested or with the reason why not."""
    names = _short_labels(variants)
    rows = []
    for i in range(len(variants)):
        for j in range(i + 1, len(variants)):
            pair = an.pairs.get((i, j), sig.PairTest())
            why = [
                f"{names[k]} has {'no scored run' if an.n[k] == 0 else 'one scored seed'}"
                for k in (i, j)
                if an.n[k] < 2
            ]
            rows.append({
                "budget": view, "metric": metric, "variant_a": names[i], "variant_b": names[j],
                "test": opts.test, "n_a": an.n[i], "n_b": an.n[j],
                "not_completed_a": _not_completed(variants[i]),
                "not_completed_b": _not_completed(variants[j]),
                "mean_a": an.means[i], "mean_b": an.means[j],
                "statistic": pair.statistic, "p": pair.p,
                "p_adjusted": an.adjusted.get((i, j), math.nan),
                "separated": an.separated(i, j), "effect": pair.diff, "hedges_g": pair.g,
                "ci_low": pair.ci[0], "ci_high": pair.ci[1], "ci": opts.ci.describe(),
                "seeds_needed": "" if pair.seeds_needed is None else pair.seeds_needed,
                "note": "no test: " + "; ".join(why) if why else "",
            })  # fmt: skip
    return rows


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if rows:
            w.writerow(rows[0].keys())
        for row in rows:
            w.writerow(["" if isinstance(x, float) and math.isnan(x) else x for x in row.values()])


# -- equal budgets ------------------------------------------------------------------------------
BUDGETS = {
    "steps": "generator steps",
    "images": "real images seen",
    "wall": "seconds of training",
}


def images_per_step(run: Run) -> float:
    """Real images consumed per generator step, over all devices: metrics.json real_images_seen
    / steps when recorded, else batch_size × n_critic (CycleGAN: one batch of each domain)."""
    seen, steps = _finite(run.metrics.get("real_images_seen")), _finite(run.metrics.get("steps"))
    if seen > 0 and steps > 0:
        return seen / steps
    batch = _finite(run.value("batch_size"))
    if run.value("task") == "cyclegan":
        per_device = 2 * batch
    else:
        n_critic = _finite(run.value("n_critic"))
        per_device = batch * (n_critic if n_critic > 0 else 1.0)
    world = 1.0
    for key in ("trainer.devices", "trainer.num_nodes"):
        n = run.value(key)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            world *= n
    return per_device * world


def cost_per_step(run: Run, kind: str) -> float:
    """What one generator step costs in the budget's unit (NaN: not recorded)."""
    if kind == "steps":
        return 1.0
    images = images_per_step(run)
    if kind == "images":
        return images
    speed = _finite(run.metrics.get("imgs_per_s"))  # training only: evaluation time excluded
    return images / speed if speed > 0 else math.nan


def score_points(run: Run, metric: str) -> list[tuple[int, float]]:
    """The run's evaluations (generator step, score): its val/<metric> curve, or its final score
    at its last step when no curve was logged."""
    points = [(s, v) for s, v in run.curves.get(metric, []) if math.isfinite(v)]
    steps, final = _finite(run.metrics.get("steps")), run.final(metric)
    if not points and math.isfinite(steps) and math.isfinite(final):
        points = [(int(steps), final)]
    return points


@dataclass
class BudgetView:
    """The variants' scores at one shared budget: each run's last evaluation within it."""

    kind: str
    budget: float  # NaN: not available (why in `note`)
    samples: list[list[float]]
    per_step: list[float]  # each variant's mean cost of a generator step
    first: list[float]  # the cost at each variant's first evaluation
    note: str = ""
    analysis: sig.Analysis | None = None

    def describe(self) -> str:
        if self.kind == "wall":
            return f"{fmt(self.budget)} s of training"
        return f"{self.budget:,.0f} {BUDGETS[self.kind]}"


def budget_view(variants: Sequence[Variant], metric: str, kind: str, opts: StatsOptions):
    """Rank the variants at the largest budget every variant reached: the least any completed
    run reached, each run scored by its last evaluation within that budget."""
    runs = [
        [(cost_per_step(r, kind), score_points(r, metric)) for r in v.completed] for v in variants
    ]
    runs = [[(c, pts) for c, pts in rs if math.isfinite(c) and c > 0 and pts] for rs in runs]
    reach = [min(c * pts[-1][0] for c, pts in rs) for rs in runs if rs]
    if not reach:
        why = (
            "no completed run has both scores and "
            + {
                "steps": "a step count",
                "images": "a recorded batch size",
                "wall": "a recorded speed (metrics.json imgs_per_s)",
            }[kind]
        )
        empty = [[] for _ in variants]
        nan = [math.nan] * len(variants)
        return BudgetView(kind, math.nan, empty, nan, nan, why)
    budget = min(reach)
    samples = [[_score_within(c, pts, budget) for c, pts in rs] for rs in runs]
    per_step = [statistics.fmean(c for c, _ in rs) if rs else math.nan for rs in runs]
    first = [min((c * pts[0][0] for c, pts in rs), default=math.nan) for rs in runs]
    view = BudgetView(kind, budget, samples, per_step, first)
    view.analysis = sig.analyse(samples, _higher(metric, _runs_of(variants)), opts.test,
                                opts.ci, opts.alpha)  # fmt: skip
    return view


def _score_within(cost: float, points: Sequence[tuple[int, float]], budget: float) -> float:
    within = [v for s, v in points if s * cost <= budget * (1 + 1e-9)]
    return within[-1] if within else math.nan


# -- evaluation noise ---------------------------------------------------------------------------
def eval_seed_scores(run: Run, metric: str) -> tuple[dict[int, float], int]:
    """({eval seed: score}, files set aside): the run's final score at its training eval seed,
    and the ganarena-eval results of its final checkpoint (checkpoints/eval_*.json) at the run's
    last step whose settings equal the training evaluation's in all but the seed (the last
    file of a seed wins)."""
    train_eval = run.metrics.get("eval")
    if not isinstance(train_eval, dict):
        return {}, 0
    same = {k: v for k, v in train_eval.items() if _comparable(k) and k != "seed"}
    # Training's own final evaluation scored the same checkpoint with its eval seed.
    final = run.final(metric)
    scores = {train_eval.get("seed"): final} if math.isfinite(final) else {}
    other = 0
    for path in sorted((run.path / "checkpoints").glob("eval_*.json")):
        try:
            result = json.loads(path.read_text())
            settings, inputs = result["eval"], result.get("inputs") or {}
            value = _finite((result.get("scores") or {}).get(metric))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            other += 1
            continue
        theirs = {k: v for k, v in settings.items() if _comparable(k) and k != "seed"}
        if theirs != same or inputs.get("step") != run.metrics.get("steps") or math.isnan(value):
            other += 1
            continue
        scores[settings.get("seed")] = value
    return scores, other


@dataclass
class EvalNoise:
    """Per variant: the sd of one checkpoint's score over evaluation seeds (pooled over its
    runs), how many checkpoints and seeds it rests on, and the files set aside."""

    sd: list[float]
    checkpoints: list[int]
    seeds: list[int]
    set_aside: int

    @property
    def any(self) -> bool:
        return any(self.checkpoints)


def eval_noise(variants: Sequence[Variant], metric: str) -> EvalNoise:
    sds, ckpts, seeds, aside = [], [], [], 0
    for v in variants:
        variances, n_seeds = [], 0
        for r in v.completed:
            scores, other = eval_seed_scores(r, metric)
            aside += other
            if len(scores) >= 2:
                variances.append(statistics.variance(scores.values()))
                n_seeds = max(n_seeds, len(scores))
        sds.append(math.sqrt(statistics.fmean(variances)) if variances else math.nan)
        ckpts.append(len(variances))
        seeds.append(n_seeds)
    return EvalNoise(sds, ckpts, seeds, aside)


# -- output ---------------------------------------------------------------------------------------
def fmt(x: float) -> str:
    """Numbers for the markdown table: 2 decimals from 1 up, 3 significant digits below."""
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "–"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _cell(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    if not math.isfinite(std):
        return fmt(mean)
    shown = fmt(mean)
    decimals = len(shown.split(".")[1]) if "." in shown and "e" not in shown else 0
    # A std of 1 or more gets the mean's decimals ("3404 ± 654"); a small one keeps 3 digits.
    return f"{shown} ± {std:.{decimals}f}" if abs(std) >= 1 else f"{shown} ± {fmt(std)}"


def _setting(value: Any) -> str:
    if isinstance(value, str):
        is_hash = len(value) >= 32 and all(c in "0123456789abcdef" for c in value)
        return value[:12] if is_hash else value  # sha256 / fingerprints: a prefix identifies them
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value)


@dataclass
class Findings:
    """What the tests found: the final-score analysis, its verdict, the equal-budget views and
    the evaluation-seed spread."""

    opts: StatsOptions
    analysis: sig.Analysis
    verdict: str
    views: list[BudgetView]
    noise: EvalNoise


def render_markdown(
    sweeps: Sequence[Path],
    runs: Sequence[Run],
    variants: Sequence[Variant],
    rows: dict,
    keys: Sequence[str],
    metric: str,
    metrics: Sequence[str],
    shared: dict,
    differing: dict,
    hints: Sequence[str],
    findings: Findings,
) -> str:
    lines = [f"# GAN comparison: {', '.join(s.name for s in sweeps)}", "", findings.verdict, ""]
    lines += _header_lines(sweeps, runs, keys, metric, shared, differing, hints)
    lines += _stats_lines(variants, metric, findings)
    lines += ["", *_table_lines(variants, rows, keys, metric, metrics, findings)]
    bad = [r for r in runs if not r.completed]
    if bad:
        lines += ["", "Runs that did not complete (not in the means):", ""]
        for r in bad:
            what = ", ".join(f"{k}={_label_value(r.value(k))}" for k in (*keys, "seed"))
            lines.append(
                f"- job {r.name} ({what}): {r.status}" + (f" — {r.note}" if r.note else "")
            )
    lines += _paper_lines(variants)
    lines += _budget_lines(variants, keys, metric, findings)
    lines += _noise_lines(variants, rows, keys, metric, findings)
    return "\n".join(lines) + "\n"


def _published(run: Run) -> dict | None:
    """The paper's numbers a reproduction preset (experiment=repro_*) set beside this run's row
    (repro.published.<repro.row>): {} for a row the paper did not run, None outside a preset."""
    table = run.value("repro.published")
    if not isinstance(table, dict):
        return None
    row = table.get(run.value("repro.row"))
    return row if isinstance(row, dict) else {}


def _paper_lines(variants: Sequence[Variant]) -> list[str]:
    """A reproduction sweep in its paper's layout: one line per row of the table (repro.row),
    our mean ± standard error over the completed seeds of each score the paper reports, and the
    published mean beside it (in brackets; – where the paper has no such row)."""
    papers = [v for v in variants if v.completed and _published(v.completed[0]) is not None]
    if not papers:
        return []
    runs = [r for v in papers for r in v.completed]
    titles = sorted({str(r.value("repro.table")) for r in runs})
    tables = [r.value("repro.published").values() for r in runs]
    scores = list(
        dict.fromkeys(k for t in tables for row in t if isinstance(row, dict) for k in row)
    )
    lines = [
        "", f"## Beside the published numbers: {'; '.join(titles)}", "",
        "Ours: mean ± standard error (sample std / √seeds) of the final scores over the completed "
        "seeds; the paper's mean in brackets.", "",
        f"| row | {' | '.join(_label(m, runs) for m in scores)} | seeds | steps |",
        "|---|" + "---|" * (len(scores) + 2),
    ]  # fmt: skip

    def row_of(v: Variant) -> str:
        return str(v.completed[0].value("repro.row"))

    for v in sorted(papers, key=lambda v: (row_of(v) != "gan", row_of(v), v.key)):
        done, row = v.completed, row_of(v)
        published, cells = _published(done[0]), []
        for m in scores:
            values = [x for x in (r.final(m) for r in done) if math.isfinite(x)]
            mean, std = mean_std(values)
            ours = _cell(mean, std / math.sqrt(len(values)) if len(values) > 1 else math.nan)
            cells.append(f"{ours} ({fmt(published[m]) if m in published else '–'})")
        name = "GAN" if row == "gan" else row.replace("pac", "PacGAN")
        steps = ", ".join(str(s) for s in sorted({r.metrics.get("steps") for r in done}))
        lines.append(f"| {name} | {' | '.join(cells)} | {len(done)} | {steps} |")
    return lines


def _header_lines(sweeps, runs, keys, metric, shared, differing, hints) -> list[str]:
    label = _label(metric, runs)
    order = "higher is better" if _higher(metric, runs) else "lower is better"
    lines = [
        f"- Sweep: {', '.join(f'`{s}`' for s in sweeps)} — {len(runs)} runs: "
        f"{_status_counts(runs)}.",
        f"- One row per {' × '.join(keys)}; sorted by mean final {label} ({order}).",
        "- Cells: mean ± sample standard deviation (ddof=1) over the completed runs (seeds); "
        "a bare number is a single run, – means no score. *best* is the best evaluation of each "
        "run (lowest FID/KID, highest IS); *seeds* counts completed runs.",
    ]
    if shared:
        lines.append(
            "- Eval settings shared by all scored runs: "
            + ", ".join(f"{k}={_setting(v)}" for k, v in shared.items() if _comparable(k))
            + "."
        )
    else:
        lines.append(
            "- No run was scored (evaluation disabled, eval=none?): only counts and speed."
        )
    for k, by_value in differing.items():
        lines.append(
            f"- **Mixed eval setting** {k}: "
            + "; ".join(f"{json.loads(v)!r} (jobs {_names(n)})" for v, n in by_value.items())
            + " — scores are not strictly comparable (--allow-mixed-eval)."
        )
    if hints:
        names = ", ".join(f"`{h}`" for h in hints)
        lines.append(
            f"- Note: runs grouped together differ in the swept setting{'s' if len(hints) > 1 else ''} "
            f"{names}; add {'them' if len(hints) > 1 else 'it'} to --group-by "
            f"({','.join([*keys, *hints])}) to separate them."
        )
    return lines


def _stats_lines(variants: Sequence[Variant], metric: str, findings: Findings) -> list[str]:
    label, opts, an = _label(metric, _runs_of(variants)), findings.opts, findings.analysis
    names = _short_labels(variants)
    tested = sum(math.isfinite(p) for p in an.adjusted.values())
    lines = [
        f"- *rank*: variants that no test separates share a rank (1–2). A pair is separated when "
        f"{opts.test_name} (two-sided) on the final {label} gives a Holm–Bonferroni-adjusted "
        f"p < α = {opts.alpha:g} over the {tested} pairs tested; every pair, with the "
        "difference of means, its interval and Hedges' g: `comparison_pairs.csv`. "
        f"*{label} CI*: {opts.ci.describe()} of the mean over seeds."
    ]
    single = [names[i] for i, n in enumerate(an.n) if n == 1]
    if single:
        lines.append(
            f"- One scored seed, so no test is possible for: {_names(single)} (a test needs at "
            "least two seeds per variant)."
        )
    unscored = [f"{names[i]} ({n})" for i, v in enumerate(variants) if (n := _unscored(v, metric))]
    if unscored:
        lines.append(
            f"- Completed runs without a final {label}, so in no mean or test: {_names(unscored)}."
        )
    return lines


def _table_lines(variants, rows, keys, metric, metrics, findings: Findings) -> list[str]:
    runs = _runs_of(variants)
    pct = f"{100 * findings.opts.ci.level:g} %"
    header = [*keys, "rank"]
    for m in metrics:
        header += [f"final {_label(m, runs)}"]
        if m == metric:
            header += [f"{_label(m, runs)} {pct} CI"]
        header += [f"best {_label(m, runs)}"]
    header += ["seeds", "diverged", "failed", "wall s", "img/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for v in variants:
        row = rows[v.key]
        cells = [*v.key, row["rank"] or "–"]
        for m in metrics:
            cells.append(_cell(row[f"final_{m}_mean"], row[f"final_{m}_std"]))
            if m == metric:
                cells.append(_interval(row[f"final_{m}_ci_low"], row[f"final_{m}_ci_high"]))
            cells.append(_cell(row[f"best_{m}_mean"], row[f"best_{m}_std"]))
        cells += [
            str(row["seeds"]),
            str(row["diverged"]),
            str(row["failed"]),
            fmt(row["wall_s_mean"]),
            fmt(row["imgs_per_s_mean"]),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _interval(lo: float, hi: float) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "–"


def _budget_lines(variants, keys, metric, findings: Findings) -> list[str]:
    label = _label(metric, _runs_of(variants))
    higher = _higher(metric, _runs_of(variants))
    names = _short_labels(variants)
    lines = [
        "",
        "## Equal budgets",
        "",
        f"Final {label} at equal cost, for variants that cost differently per generator step. "
        "Each budget is the largest every variant reached (the least any completed run reached); "
        f"each run counts with its last evaluation within it (TensorBoard `val/{metric}`), and "
        "the ranks are tested as above. Real images per step: batch size × n_critic (× devices); "
        "seconds: those images ÷ the run's img/s, i.e. training time without evaluation.",
        "",
    ]
    for view in findings.views:
        if view.analysis is None:
            lines.append(f"- **{BUDGETS[view.kind]}**: not available ({view.note}).")
            continue
        order = sorted(range(len(variants)), key=lambda i: _rank_order(view, i, higher))
        cells = [_budget_cell(view, i, names[i]) for i in order]
        lines.append(f"- **at {view.describe()}**: " + "; ".join(cells) + ".")
    by_kind = {v.kind: v for v in findings.views}
    costs = [
        f"{names[i]} {by_kind['images'].per_step[i]:,.0f} real images, "
        f"{fmt(by_kind['wall'].per_step[i])} s"
        for i in range(len(variants))
        if math.isfinite(by_kind["images"].per_step[i])
    ]
    if costs:
        lines.append("- Cost of one generator step (mean over runs): " + "; ".join(costs) + ".")
    return lines


def _rank_order(view: BudgetView, i: int, higher: bool) -> tuple:
    """Best mean first at this budget; variants without a score last."""
    mean = view.analysis.means[i] if view.analysis else math.nan
    if not math.isfinite(mean):
        return (True, 0.0, i)
    return (False, -mean if higher else mean, i)


def _budget_cell(view: BudgetView, i: int, name: str) -> str:
    an = view.analysis
    values = view.samples[i]
    scored = [x for x in values if math.isfinite(x)]
    if an is None or not scored:
        first = view.first[i]
        if math.isfinite(first) and first > view.budget:
            at = f"{fmt(first)} s" if view.kind == "wall" else f"{first:,.0f}"
            return f"– {name} (first evaluated at {at})"
        return f"– {name} (no score)"
    cell = f"{sig.rank_label(*an.ranks[i])} {name} ({_cell(an.means[i], an.stds[i])}"
    if len(scored) < len(values):
        cell += f"; {len(values) - len(scored)} of {len(values)} runs not evaluated by then"
    return cell + ")"


def _noise_lines(variants, rows, keys, metric, findings: Findings) -> list[str]:
    label, noise = _label(metric, _runs_of(variants)), findings.noise
    if not noise.any:
        return [
            "",
            "Evaluation noise is not separated from training noise here: score each job's "
            "final checkpoint again with `ganarena-eval ckpt_path=<job>/checkpoints/last.ckpt "
            "eval.seed=1` (then 2, 3, ...; every other eval.* setting as in training) and rerun "
            "ganarena-compare to see the spread of one checkpoint over evaluation seeds.",
        ]
    names = _short_labels(variants)
    lines = [
        "",
        "## Evaluation noise",
        "",
        f"The sd of one checkpoint's final {label} over evaluation seeds (ganarena-eval "
        "`eval.seed=`, the training's other eval settings), pooled over the variant's runs, "
        "beside the sd over training seeds (the table's ±):",
        "",
    ]
    for i, v in enumerate(variants):
        if noise.checkpoints[i]:
            lines.append(
                f"- {names[i]}: eval-seed sd {fmt(noise.sd[i])} ({noise.checkpoints[i]} "
                f"checkpoint(s) × up to {noise.seeds[i]} eval seeds), training-seed sd "
                f"{fmt(rows[v.key][f'final_{metric}_std'])}"
            )
    rest = [names[i] for i in range(len(variants)) if not noise.checkpoints[i]]
    if rest:
        lines.append(f"- No checkpoint scored with two or more eval seeds: {_names(rest)}")
    if noise.set_aside:
        lines.append(
            f"- {noise.set_aside} ganarena-eval result(s) set aside: another step, other eval "
            "settings than training's, or unreadable."
        )
    return lines


def findings_columns(
    variants: Sequence[Variant], rows: dict, metric: str, findings: Findings
) -> None:
    """Add the tests' columns to each variant's comparison.csv row."""
    an, noise = findings.analysis, findings.noise
    for i, v in enumerate(variants):
        row = rows[v.key]
        row["rank"] = sig.rank_label(*an.ranks[i]) if an.ranks[i] else ""
        row[f"final_{metric}_ci_low"], row[f"final_{metric}_ci_high"] = an.intervals[i]
        row["ci"], row["test"] = findings.opts.ci.describe(), findings.opts.test
        for view in findings.views:
            k, van = view.kind, view.analysis
            row[f"at_{k}_budget"] = view.budget
            row[f"at_{k}_{metric}_mean"] = van.means[i] if van else math.nan
            row[f"at_{k}_{metric}_std"] = van.stds[i] if van else math.nan
            row[f"at_{k}_rank"] = sig.rank_label(*van.ranks[i]) if van and van.ranks[i] else ""
        by_kind = {view.kind: view for view in findings.views}
        row["images_per_step"] = by_kind["images"].per_step[i]
        row["s_per_step"] = by_kind["wall"].per_step[i]
        row[f"eval_seed_{metric}_sd"] = noise.sd[i]
        row["eval_seed_checkpoints"], row["eval_seeds"] = noise.checkpoints[i], noise.seeds[i]


def write_csv(path: Path, variants: Sequence[Variant], rows: dict, keys: Sequence[str]) -> None:
    fields = [*keys, *next(iter(rows.values())).keys()]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for v in variants:
            values = list(v.key) + list(rows[v.key].values())
            w.writerow(["" if isinstance(x, float) and math.isnan(x) else x for x in values])


def _short_labels(variants: Sequence[Variant]) -> list[str]:
    """Variant labels without the group-by values that all variants share."""
    n = len(variants[0].key) if variants else 0
    varying = [i for i in range(n) if len({v.key[i] for v in variants}) > 1] or list(range(n))
    return [" / ".join(v.key[i] for i in varying) for v in variants]


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # no pyplot: no global state, no display needed
    return fig


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_curves(path: Path, variants: Sequence[Variant], metric: str, opts: StatsOptions) -> None:
    label = _label(metric, _runs_of(variants))
    fig = _new_figure(8, 5)
    ax = fig.add_subplot()
    plotted = 0
    for v, name in zip(variants, _short_labels(variants), strict=True):
        by_step: dict[int, list[float]] = defaultdict(list)
        for r in v.completed:
            for step, value in r.curves.get(metric, []):
                if math.isfinite(value):
                    by_step[step].append(value)
        if not by_step:
            continue
        steps = sorted(by_step)
        mean = [statistics.fmean(by_step[s]) for s in steps]
        line = ax.plot(
            steps, mean, marker="o", markersize=3, label=f"{name} (n={len(v.completed)})"
        )
        band = [(s, *sig.mean_interval(by_step[s], opts.ci)) for s in steps]
        band = [b for b in band if math.isfinite(b[1])]  # two or more seeds at that step
        if band:
            ax.fill_between(
                [b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                color=line[0].get_color(), alpha=0.2, linewidth=0,
            )  # fmt: skip
        plotted += 1
    if plotted:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generator step")
        ax.set_ylabel(label)
        ax.set_title(f"{label} during training: mean over seeds, band: {opts.ci.describe()}")
        ax.title.set_fontsize("medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    else:
        _no_data(ax, f"No val/{metric} scalars in the runs' TensorBoard logs (evaluation off?)")
    fig.tight_layout()
    fig.savefig(path)


def plot_box(path: Path, variants: Sequence[Variant], metric: str, findings: Findings) -> None:
    import matplotlib
    import numpy as np

    label = _label(metric, _runs_of(variants))
    an = findings.analysis
    names = _short_labels(variants)
    fig = _new_figure(8, max(2.5, 0.45 * len(variants) + 1.5))
    ax = fig.add_subplot()
    data, positions = [], []
    for i, v in enumerate(variants):
        vals = [x for x in (r.final(metric) for r in v.completed) if math.isfinite(x)]
        bad = _not_completed(v)
        rank = f"#{sig.rank_label(*an.ranks[i])} " if an.ranks[i] else ""
        names[i] = rank + names[i] + (f"  ({bad})" if bad else "")
        if vals:
            data.append(vals)
            positions.append(i)
    if data:
        horizontal = (
            {"orientation": "horizontal"}
            if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
            else {"vert": False}
        )
        ax.boxplot(data, positions=positions, widths=0.6, showfliers=False, **horizontal)
        jitter = np.random.default_rng(0)
        for vals, pos in zip(data, positions, strict=True):
            ys = pos + jitter.uniform(-0.15, 0.15, len(vals))
            ax.scatter(vals, ys, s=14, alpha=0.8, zorder=3)
            lo, hi = an.intervals[pos]
            if math.isfinite(lo):
                m = an.means[pos]
                ax.errorbar(
                    [m], [pos + 0.38], xerr=[[m - lo], [hi - m]], fmt="D", color="black",
                    markersize=4, capsize=3, linewidth=1, zorder=4,
                )  # fmt: skip
        ax.set_yticks(range(len(variants)), names, fontsize="small")
        ax.set_ylim(-0.7, len(variants) - 0.1)
        ax.invert_yaxis()  # best variant on top, as in the table
        ax.set_xlabel(f"final {label}")
        ax.set_title(
            f"Final {label} per variant over seeds (box: quartiles, dots: runs, "
            f"diamond: mean, bar: {findings.opts.ci.describe()})",
            fontsize="medium",
        )
        ax.grid(axis="x", alpha=0.3)
    else:
        _no_data(ax, f"No final {metric} scores in the runs' metrics.json (evaluation off?)")
    fig.tight_layout()
    fig.savefig(path)


# -- entry point ----------------------------------------------------------------------------------
@dataclass
class Comparison:
    markdown: str
    files: list[Path]


def compare(
    sweeps: Sequence[str | Path],
    out: str | Path | None = None,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    metric: str = registry.PRIMARY.name,
    allow_mixed_eval: bool = False,
    test: str = "welch",
    ci: str = "t",
    level: float | str = 0.95,
    bootstrap_method: str = "bca",
    bootstrap_seed: int | str = 0,
) -> Comparison:
    """Compare the jobs of one or more sweep folders; writes the table, the pairwise tests and
    the plots into `out`."""
    opts = stats_options(test, ci, level, bootstrap_method, bootstrap_seed)
    sweeps = [Path(s) for s in sweeps]
    keys = list(dict.fromkeys(k.strip() for k in group_by if k.strip()))
    if not keys:
        raise CompareError(
            f"--group-by is empty. Name at least one key, e.g. --group-by "
            f"{','.join(DEFAULT_GROUP_BY)} (valid: {', '.join(SUMMARY_KEYS)} or a config path)."
        )
    runs = find_runs(sweeps)
    if tuple(keys) == DEFAULT_GROUP_BY and any(r.value("repro.row") is not _ABSENT for r in runs):
        keys.append("repro.row")  # a reproduction sweep: its rows are the paper's (repro_row=)
    check_group_by(runs, keys)
    metrics = tabulated_metrics(runs, metric)
    shared, differing = eval_settings(runs, allow_mixed_eval)
    for r in runs:
        if r.completed:
            read_curves(r, metrics)
    variants = group_runs(runs, keys)
    rows = {v.key: summarize(v, metrics) for v in variants}
    variants = sort_variants(variants, rows, metric)
    findings = find(variants, metric, opts)
    findings_columns(variants, rows, metric, findings)
    hints = mixed_hints(variants, keys)
    markdown = render_markdown(
        sweeps, runs, variants, rows, keys, metric, metrics, shared, differing, hints, findings
    )
    pairs = pair_rows(variants, findings.analysis, metric, opts, "final")
    for view in findings.views:
        if view.analysis is not None:
            pairs += pair_rows(variants, view.analysis, metric, opts, view.describe())
    out_dir = _out_dir(out, sweeps)
    # One set of files per metric: a comparison sorted by another metric never replaces this one.
    stem = "comparison" if metric == registry.PRIMARY.name else f"comparison_{metric}"
    writers = {
        f"{stem}.md": lambda p: p.write_text(markdown),
        f"{stem}.csv": lambda p: write_csv(p, variants, rows, keys),
        f"{stem}_pairs.csv": lambda p: write_rows(p, pairs),
        f"{metric}_curves.png": lambda p: plot_curves(p, variants, metric, opts),
        f"{metric}_box.png": lambda p: plot_box(p, variants, metric, findings),
    }
    files = []
    try:
        for name, write in writers.items():
            atomic_write(out_dir / name, write)
            files.append(out_dir / name)
    except OSError as e:
        raise CompareError(
            f"Cannot write the comparison into {out_dir} ({e.strerror or e}). Pass a writable "
            "folder with --out DIR."
        ) from None
    return Comparison(markdown, files)


def tabulated_metrics(runs: Sequence[Run], metric: str) -> list[str]:
    """The metrics of the table: the registry's, PRDC when reported, plug-ins, then `metric`
    (refused with the available ones when no run reports it)."""
    known = set(METRICS) | {
        k for r in runs for k, v in (r.metrics.get("final") or {}).items()
        if not k.endswith("_std") and isinstance(v, (int, float))
    }  # fmt: skip
    if metric not in known:
        raise CompareError(
            f"Unknown --metric '{metric}'. Available: {', '.join(sorted(known))} (the keys of "
            "the runs' metrics.json final scores)."
        )
    # PRDC when reported, and every plug-in metric the runs declared (metrics.json "metrics")
    plugins = [m for m in declarations(runs) if m not in registry.BUILTIN]
    extra = [m for m in (*PRDC, *plugins) if m in known and m != metric and m not in METRICS]
    return [*METRICS, *extra, *([metric] if metric not in METRICS else [])]


def find(variants: Sequence[Variant], metric: str, opts: StatsOptions) -> Findings:
    """Test the final scores, rank at the three equal budgets, and read evaluation noise."""
    higher = _higher(metric, _runs_of(variants))
    an = sig.analyse(final_samples(variants, metric), higher, opts.test, opts.ci, opts.alpha)
    label = _label(metric, _runs_of(variants))
    views = [budget_view(variants, metric, kind, opts) for kind in BUDGETS]
    return Findings(
        opts, an, verdict(variants, an, metric, label, opts), views, eval_noise(variants, metric)
    )


def _out_dir(out: str | Path | None, sweeps: Sequence[Path]) -> Path:
    out_dir = Path(out) if out is not None else sweeps[0]
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(
            f"--out {out_dir} is a file, not a folder. Pass a folder for the comparison files "
            "(it is created if missing), or drop --out to write them into the sweep folder."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CompareError(
            f"Cannot create the output folder --out {out_dir} ({e.strerror or e}). Pass a "
            "writable folder, or drop --out to write into the sweep folder."
        ) from None
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compare the runs of a ganarena-train multirun: a table (markdown + CSV) of "
        "mean ± std over seeds per variant with confidence intervals and ranks from pairwise "
        "tests, a verdict, rankings at equal budgets, metric curves and a box plot.",
    )
    p.add_argument(
        "sweep_dir", nargs="+", metavar="SWEEP_DIR",
        help="multirun folder(s), e.g. outputs/train/multiruns/<date>_<time>; several are merged",
    )  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="where to write the outputs (default: SWEEP_DIR)")
    p.add_argument(
        "--group-by", default=",".join(DEFAULT_GROUP_BY), metavar="KEYS",
        help=f"comma-separated variant keys (default: {','.join(DEFAULT_GROUP_BY)}); any of "
        f"{', '.join(SUMMARY_KEYS)} or a dotted config path such as optim.d.lr",
    )  # fmt: skip
    p.add_argument(
        "--metric", default=registry.PRIMARY.name,
        help="the metric to sort and plot by (default: fid; also is, kid, ...)",
    )  # fmt: skip
    p.add_argument(
        "--allow-mixed-eval", action="store_true",
        help="tabulate runs scored with different evaluation settings (listed in the header)",
    )  # fmt: skip
    stats = p.add_argument_group("tests and intervals (on the final --metric over seeds)")
    stats.add_argument(
        "--test", default="welch", metavar="welch|mannwhitney",
        help="pairwise test, two-sided, Holm-Bonferroni-adjusted over the pairs (default: welch)",
    )  # fmt: skip
    stats.add_argument(
        "--ci", default="t", metavar="t|bootstrap",
        help="interval of each mean and of each difference (default: t)",
    )  # fmt: skip
    stats.add_argument(
        "--level", default="0.95",
        help="confidence level of the intervals; the tests use alpha = 1 - level (default: 0.95)",
    )  # fmt: skip
    stats.add_argument(
        "--bootstrap-method", default="bca", metavar="bca|percentile",
        help="with --ci bootstrap: BCa or percentile intervals (default: bca)",
    )  # fmt: skip
    stats.add_argument(
        "--bootstrap-seed", default="0", metavar="N",
        help="with --ci bootstrap: the resampling seed (default: 0)",
    )  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s", stream=sys.stderr)
    try:
        result = compare(
            args.sweep_dir,
            out=args.out,
            group_by=args.group_by.split(","),
            metric=args.metric,
            allow_mixed_eval=args.allow_mixed_eval,
            test=args.test,
            ci=args.ci,
            level=args.level,
            bootstrap_method=args.bootstrap_method,
            bootstrap_seed=args.bootstrap_seed,
        )
    except GanarenaError as e:
        print(textwrap.fill(f"{PROG}: error: {e}", width=100), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.stdout.write(result.markdown)
    print(f"{PROG}: wrote {', '.join(str(f) for f in result.files)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
