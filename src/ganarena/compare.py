"""ganarena-compare: turn a Hydra multirun folder into a paper-style comparison.

Reads every job's metrics.json (and .hydra/config.yaml) and its TensorBoard `val/<metric>`
scalars, groups the jobs into variants (by default model, loss and dataset; the seeds of a variant
are its repetitions) and writes into --out (default: the sweep folder):

  comparison.md / comparison.csv   one row per variant: mean ± sample std (ddof=1) over the
                                   completed runs of the final and best FID/IS/KID, the number of
                                   seeds, diverged and failed runs, mean wall time and img/s;
                                   sorted by --metric; the shared eval settings in the header.
                                   With --metric other than fid: comparison_<metric>.md/.csv, so
                                   a second ordering never replaces the first
  <metric>_curves.png              the metric against generator step: mean per variant with a
                                   min-max band over seeds
  <metric>_box.png                 box + strip plot of the final metric per variant over seeds
                                   (the figure style of Lucic et al. 2018)

The markdown is printed to stdout. Runs without a metrics.json are listed as failed, never
skipped; runs scored with different evaluation settings are refused unless --allow-mixed-eval.
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
from ganarena.files import atomic_write
from ganarena.metrics import registry
from ganarena.records import RUN_KEYS, STATUSES, select

log = logging.getLogger("ganarena.compare")

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
        counts = _status_counts(runs)
        raise CompareError(
            f"None of the {len(runs)} runs in {', '.join(map(str, sweeps))} completed "
            f"({counts}), so there is nothing to compare. See each job's train.log; "
            "diverged runs need lower learning rates or another loss."
        )
    return sorted(runs, key=lambda r: _natural(r.name))


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
                "loss.optimizer_d.betas, dataset.limit)."
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
) -> str:
    label = _label(metric, runs)
    order = "higher is better" if _higher(metric, runs) else "lower is better"
    lines = [
        f"# GAN comparison: {', '.join(s.name for s in sweeps)}",
        "",
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
    header = [*keys]
    for m in metrics:
        header += [f"final {_label(m, runs)}", f"best {_label(m, runs)}"]
    header += ["seeds", "diverged", "failed", "wall s", "img/s"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for v in variants:
        row = rows[v.key]
        cells = list(v.key)
        for m in metrics:
            for kind in ("final", "best"):
                cells.append(_cell(row[f"{kind}_{m}_mean"], row[f"{kind}_{m}_std"]))
        cells += [
            str(row["seeds"]),
            str(row["diverged"]),
            str(row["failed"]),
            fmt(row["wall_s_mean"]),
            fmt(row["imgs_per_s_mean"]),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    bad = [r for r in runs if not r.completed]
    if bad:
        lines += ["", "Runs that did not complete (not in the means):", ""]
        for r in bad:
            what = ", ".join(f"{k}={_label_value(r.value(k))}" for k in (*keys, "seed"))
            lines.append(
                f"- job {r.name} ({what}): {r.status}" + (f" — {r.note}" if r.note else "")
            )
    return "\n".join(lines) + "\n"


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


def plot_curves(path: Path, variants: Sequence[Variant], metric: str) -> None:
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
        ax.fill_between(
            steps, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps],
            color=line[0].get_color(), alpha=0.2, linewidth=0,
        )  # fmt: skip
        plotted += 1
    if plotted:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generator step")
        ax.set_ylabel(label)
        ax.set_title(f"{label} during training: mean over seeds, min–max band")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    else:
        _no_data(ax, f"No val/{metric} scalars in the runs' TensorBoard logs (evaluation off?)")
    fig.tight_layout()
    fig.savefig(path)


def plot_box(path: Path, variants: Sequence[Variant], metric: str) -> None:
    import matplotlib
    import numpy as np

    label = _label(metric, _runs_of(variants))
    names = _short_labels(variants)
    fig = _new_figure(8, max(2.5, 0.45 * len(variants) + 1.5))
    ax = fig.add_subplot()
    data, positions = [], []
    for i, v in enumerate(variants):
        vals = [r.final(metric) for r in v.completed]
        vals = [x for x in vals if math.isfinite(x)]
        bad = [
            f"{n} {what}" for n, what in ((v.n_diverged, "diverged"), (v.n_failed, "failed")) if n
        ]
        if bad:
            names[i] += f"  ({', '.join(bad)})"
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
        ax.set_yticks(range(len(variants)), names, fontsize="small")
        ax.set_ylim(-0.7, len(variants) - 0.3)
        ax.invert_yaxis()  # best variant on top, as in the table
        ax.set_xlabel(f"final {label}")
        ax.set_title(f"Final {label} per variant over seeds (box: quartiles, dots: runs)")
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
) -> Comparison:
    """Compare the jobs of one or more sweep folders; writes the table and plots into `out`."""
    sweeps = [Path(s) for s in sweeps]
    keys = list(dict.fromkeys(k.strip() for k in group_by if k.strip()))
    if not keys:
        raise CompareError(
            f"--group-by is empty. Name at least one key, e.g. --group-by "
            f"{','.join(DEFAULT_GROUP_BY)} (valid: {', '.join(SUMMARY_KEYS)} or a config path)."
        )
    runs = find_runs(sweeps)
    check_group_by(runs, keys)
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
    metrics = [*METRICS, *extra, *([metric] if metric not in METRICS else [])]
    shared, differing = eval_settings(runs, allow_mixed_eval)
    for r in runs:
        if r.completed:
            read_curves(r, metrics)
    variants = group_runs(runs, keys)
    rows = {v.key: summarize(v, metrics) for v in variants}
    variants = sort_variants(variants, rows, metric)
    hints = mixed_hints(variants, keys)
    markdown = render_markdown(
        sweeps, runs, variants, rows, keys, metric, metrics, shared, differing, hints
    )
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
    # One set of files per metric: a comparison sorted by another metric never replaces this one.
    stem = "comparison" if metric == registry.PRIMARY.name else f"comparison_{metric}"
    files = [
        out_dir / f"{stem}.md",
        out_dir / f"{stem}.csv",
        out_dir / f"{metric}_curves.png",
        out_dir / f"{metric}_box.png",
    ]
    try:
        atomic_write(files[0], lambda p: p.write_text(markdown))
        atomic_write(files[1], lambda p: write_csv(p, variants, rows, keys))
        atomic_write(files[2], lambda p: plot_curves(p, variants, metric))
        atomic_write(files[3], lambda p: plot_box(p, variants, metric))
    except OSError as e:
        raise CompareError(
            f"Cannot write the comparison into {out_dir} ({e.strerror or e}). Pass a writable "
            "folder with --out DIR."
        ) from None
    return Comparison(markdown, files)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compare the runs of a ganarena-train multirun: a table (markdown + CSV) of "
        "mean ± std over seeds per variant, metric curves and a box plot.",
    )
    p.add_argument(
        "sweep_dir", nargs="+", metavar="SWEEP_DIR",
        help="multirun folder(s), e.g. outputs/train/multiruns/<date>_<time>; several are merged",
    )  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="where to write the outputs (default: SWEEP_DIR)")
    p.add_argument(
        "--group-by", default=",".join(DEFAULT_GROUP_BY), metavar="KEYS",
        help=f"comma-separated variant keys (default: {','.join(DEFAULT_GROUP_BY)}); any of "
        f"{', '.join(SUMMARY_KEYS)} or a dotted config path such as loss.optimizer_d.lr",
    )  # fmt: skip
    p.add_argument(
        "--metric", default=registry.PRIMARY.name,
        help="the metric to sort and plot by (default: fid; also is, kid, ...)",
    )  # fmt: skip
    p.add_argument(
        "--allow-mixed-eval", action="store_true",
        help="tabulate runs scored with different evaluation settings (listed in the header)",
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
        )
    except GanarenaError as e:
        print(textwrap.fill(f"{PROG}: error: {e}", width=100), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.stdout.write(result.markdown)
    print(f"{PROG}: wrote {', '.join(str(f) for f in result.files)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
