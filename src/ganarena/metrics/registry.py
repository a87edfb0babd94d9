"""The metric registry: every metric ganarena reports is declared here, once.

A declaration (`MetricSpec`) says the metric's name (its metrics.json key, TensorBoard tag
`val/<name>`), its direction (higher or lower is better), its human label, whether it is logged,
whether it is an HParams column and a ganarena-compare column, and which real-side statistics it
needs (`real_stats`: a cache key with its own `version`). The evaluation callback's logged names,
ganarena-compare's directions, labels and columns, the HParams metrics and the verdict's inputs
all derive from `BUILTIN`.

Plug-in metrics live outside the package: `eval.extra_metrics` maps a name to a Hydra
`_target_` (a class on PYTHONPATH, instantiated with the entry's other keys). The object needs
`compute(fake_features, fake_logits, real) -> float`, and may declare `higher_is_better`,
`label`, and real-side statistics: `cache_key` (+ `version`) and
`real_statistics(real_features, real_labels) -> dict of tensors`, computed once from the
reference's real features and cached in a file of its own beside the reference statistics
(so a new or changed statistic recomputes only its own entry). See `Metric`, and
tests/extension/feature_metric.py for a worked example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ganarena.errors import ConfigError

BASE_REFERENCE = "reference"  # the shared real statistics (evaluator.REFERENCE_VERSION)


@dataclass(frozen=True)
class MetricSpec:
    """The declaration of one metric."""

    name: str
    higher_is_better: bool
    label: str
    logged: bool = True  # a TensorBoard scalar val/<name> (lists such as fid_per_class are not)
    hparams: str | None = None  # its HParams column title, None: not a column
    compare: str | None = None  # ganarena-compare: "always" a column, "present" when runs have it
    real_stats: str | None = None  # cache key of the real-side statistics it needs
    version: int = 1  # of those statistics: bumping it recomputes that cache entry only

    @property
    def tag(self) -> str:
        return f"val/{self.name}"

    def declaration(self) -> dict[str, Any]:
        """What metrics.json "metrics" records, so readers need not import the metric."""
        return {"higher_is_better": self.higher_is_better, "label": self.label}


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {s.name: s for s in specs}


def _both(name: str, higher: bool, label: str, suffixes: tuple[str, str]) -> tuple[MetricSpec, ...]:
    return tuple(MetricSpec(f"{name}_{s}", higher, f"{label} {s}") for s in suffixes)


# The names, written here only: code that produces or reads a score uses these constants.
FID, FID_INF, IS, IS_STD, KID, KID_STD = "fid", "fid_inf", "is", "is_std", "kid", "kid_std"
MODES_COVERED, CLASS_KL, CLASS_ACC = "modes_covered", "class_kl", "class_acc"
FID_CLASS_MEAN, FID_PER_CLASS, HIGH_QUALITY = "fid_class_mean", "fid_per_class", "high_quality"
PRECISION, RECALL, DENSITY, COVERAGE = "precision", "recall", "density", "coverage"
COVERAGE_PER_CLASS, COVERAGE_CLASS_MIN = "coverage_per_class", "coverage_class_min"
# Stacked MNIST (ganarena.metrics.stacked): KL to the uniform 1,000 modes, classifier confidence
MODE_KL, DIGIT_CONFIDENCE = "mode_kl", "digit_confidence"
DIGIT_CONFIDENCE_PER_CHANNEL = "digit_confidence_per_channel"
# translation (ganarena.metrics.translation): <prefix>_<direction> or <prefix>_<domain>
LABEL_ACC, CYCLE_L1, TRUTH_L1 = "label_acc", "cycle_l1", "truth_l1"
DIRECTIONS, DOMAINS = ("ab", "ba"), ("a", "b")

_REF = BASE_REFERENCE
BUILTIN: dict[str, MetricSpec] = _specs(
    MetricSpec(FID, False, "FID", hparams="final FID", compare="always", real_stats=_REF),
    MetricSpec(FID_INF, False, "FID-infinity", real_stats=_REF),
    MetricSpec(IS, True, "IS", hparams="final IS", compare="always"),
    MetricSpec(IS_STD, False, "IS std"),
    MetricSpec(KID, False, "KID", hparams="final KID", compare="always", real_stats=_REF),
    MetricSpec(KID_STD, False, "KID std"),
    MetricSpec(MODES_COVERED, True, "modes covered", hparams="modes covered", real_stats=_REF),
    MetricSpec(CLASS_KL, False, "class KL", real_stats=_REF),
    MetricSpec(CLASS_ACC, True, "class accuracy"),
    MetricSpec(FID_CLASS_MEAN, False, "mean per-class FID", real_stats=_REF),
    MetricSpec(FID_PER_CLASS, False, "per-class FID", logged=False, real_stats=_REF),
    MetricSpec(HIGH_QUALITY, True, "high quality"),
    *(
        MetricSpec(m, True, m.capitalize(), compare="present", real_stats=_REF)
        for m in (PRECISION, RECALL, DENSITY, COVERAGE)
    ),
    MetricSpec(COVERAGE_PER_CLASS, True, "per-class coverage", logged=False, real_stats=_REF),
    MetricSpec(COVERAGE_CLASS_MIN, True, "worst class coverage", real_stats=_REF),
    MetricSpec(MODE_KL, False, "mode KL", compare="present"),
    MetricSpec(DIGIT_CONFIDENCE, True, "digit confidence (worst channel)"),
    MetricSpec(DIGIT_CONFIDENCE_PER_CHANNEL, True, "per-channel digit confidence", logged=False),
    *_both(FID, False, "FID", DIRECTIONS),
    *_both(KID, False, "KID", DIRECTIONS),
    *_both(LABEL_ACC, True, "label kept", DIRECTIONS),
    *_both(CYCLE_L1, False, "cycle L1", DOMAINS),
    *_both(TRUTH_L1, False, "L1 to the truth", DIRECTIONS),
)
PRIMARY = BUILTIN[FID]  # what `best` tracks and sweeps optimise by default
LOGGED = tuple(n for n, s in BUILTIN.items() if s.logged)
HIGHER_IS_BETTER = frozenset(n for n, s in BUILTIN.items() if s.higher_is_better)
NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class Metric:
    """Base class of a plug-in metric (optional: any object with these attributes works).

    `compute(fake_features, fake_logits, real)`: the score (a float) of the generated samples,
    from their backbone features (N, D) and logits (N, C), both float32 on the CPU, and `real`:
    what `real_statistics` returned for the reference (cached), {} without a `cache_key`.
    """

    higher_is_better: bool = False
    label: str | None = None
    cache_key: str | None = None  # set it to have real_statistics computed and cached
    version: int = 1

    def real_statistics(self, real_features, real_labels) -> dict:
        return {}

    def compute(self, fake_features, fake_logits, real: dict) -> float:
        raise NotImplementedError


@dataclass
class Plugin:
    spec: MetricSpec
    metric: Any
    target: str


def _bad(name: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"eval.extra_metrics.{name}: {problem}. {fix}")


def build_plugins(entries: Mapping | None) -> dict[str, Plugin]:
    """Instantiate `eval.extra_metrics` ({name: {_target_: module.Class, ...}}), checking every
    entry; a ConfigError (one paragraph, problem and fix) for the first bad one."""
    if not entries:
        return {}
    from omegaconf import DictConfig, OmegaConf

    if isinstance(entries, DictConfig):
        entries = OmegaConf.to_container(entries, resolve=True)
    if not isinstance(entries, Mapping):
        raise ConfigError(
            f"eval.extra_metrics must map metric names to {{_target_: module.Class}} entries, got "
            f"{entries!r}. Write it as eval.extra_metrics={{my_metric:{{_target_:my_module.MyMetric}}}} "
            "or in a conf/eval/<name>.yaml."
        )
    return {str(name): build_plugin(str(name), entry) for name, entry in entries.items()}


def build_plugin(name: str, entry) -> Plugin:
    """One eval.extra_metrics entry, checked: its name, its _target_, what the metric declares."""
    if name in BUILTIN or name.startswith("best_"):
        raise _bad(
            name,
            "this name is taken by a built-in metric (or the running best of one), and a "
            "plug-in may not replace it",
            "Give the plug-in another name (the key under eval.extra_metrics).",
        )
    if not NAME.match(name):
        raise _bad(
            name,
            "a metric name must be lower case letters, digits and underscores, starting "
            "with a letter (it becomes the TensorBoard tag val/<name> and a metrics.json key)",
            "Rename the key under eval.extra_metrics.",
        )
    if not isinstance(entry, Mapping) or not isinstance(entry.get("_target_"), str):
        raise _bad(
            name,
            f"expected a mapping with a _target_ naming the metric's class, got {entry!r}",
            f"Write it as {name}: {{_target_: my_module.MyMetric}} with my_module on PYTHONPATH.",
        )
    target = entry["_target_"]
    try:
        from hydra.utils import instantiate

        metric = instantiate(dict(entry), _convert_="all")
    except Exception as e:  # noqa: BLE001 - import errors, bad arguments: all the user's to fix
        cause = e.__cause__ or e
        raise _bad(
            name,
            f"cannot instantiate {target!r} ({type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''})",
            "Check the spelling of _target_ (module.Class), that the module is importable "
            "(put its folder on PYTHONPATH) and that the entry's other keys are the class's "
            "arguments.",
        ) from None
    return Plugin(_declared_spec(name, target, metric), metric, target)


def _declared_spec(name: str, target: str, metric) -> MetricSpec:
    """What a plug-in declares about itself (Metric's attributes), checked."""
    if not callable(getattr(metric, "compute", None)):
        raise _bad(
            name,
            f"{target!r} made a {type(metric).__name__}, which is not a metric: it has no "
            "compute(fake_features, fake_logits, real) method",
            "Point _target_ at a class with that method (e.g. a subclass of "
            "ganarena.metrics.registry.Metric).",
        )
    higher = getattr(metric, "higher_is_better", False)
    if not isinstance(higher, bool):
        raise _bad(
            name,
            f"higher_is_better must be True or False, got {higher!r}",
            "Set it as a class attribute of the metric.",
        )
    key = getattr(metric, "cache_key", None)
    if key is not None and not (isinstance(key, str) and NAME.match(key)):
        raise _bad(
            name,
            f"cache_key must be None or a lower-case identifier (a file name part), got {key!r}",
            "Set cache_key to e.g. 'feature_mean'.",
        )
    label = str(getattr(metric, "label", None) or name)
    return MetricSpec(
        name, higher, label, real_stats=key, version=int(getattr(metric, "version", 1))
    )


def refuse_plugins(entries: Mapping | None, evaluator: str) -> None:
    """ConfigError when `eval.extra_metrics` is set for an evaluator that cannot feed plug-ins
    (they receive backbone features and logits: the image Evaluator only)."""
    if entries:
        raise ConfigError(
            f"eval.extra_metrics ({', '.join(map(str, entries))}) is set, but the {evaluator} "
            "evaluation has no backbone features to give plug-in metrics (they need the image "
            "evaluator: eval=domain or eval=inception on an image dataset). Drop "
            "eval.extra_metrics for this dataset/task."
        )


def spec_of(name: str, declared: Mapping | None = None) -> MetricSpec | None:
    """The declaration of `name`: metrics.json "metrics" `declared` first (plug-ins), then the
    registry; None if neither knows it."""
    d = (declared or {}).get(name)
    if isinstance(d, Mapping) and isinstance(d.get("higher_is_better"), bool):
        return MetricSpec(name, d["higher_is_better"], str(d.get("label") or name))
    return BUILTIN.get(name)


def higher_is_better(name: str, declared: Mapping | None = None) -> bool:
    spec = spec_of(name, declared)
    return spec is not None and spec.higher_is_better


def label(name: str, declared: Mapping | None = None) -> str:
    spec = spec_of(name, declared)
    return spec.label if spec is not None else name
