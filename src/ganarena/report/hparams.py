"""Hyperparameters and final scores for TensorBoard's HParams tab, and the run's verdict as text.

`tensorboard --logdir <sweep dir>/tensorboard` then lists one row per job (a *session*, in a
session group of its own unless `tensorboard.group_by` names hparams to group by) with its
flattened config, its status and health, and its final scores: the last points of the val/*
curves (so no extra one-point charts).

What the tab shows by default: the hparams whose `differs` is set, the first five by name
(tensorboard's hparams plugin sorts them first and displays five). Every job writes the sweep's
experiment description, with `differs` set on the keys the sweep varies, then model, loss,
seed, health and status while there is room. Integers are written as strings: the tab prints
numbers with five significant digits (seed 1 as 1.0000).

Every run writes the same hparam names with the same types (None becomes NaN or "none"): the
plugin reads the experiment description from one arbitrary run, so a sweep's runs must agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ganarena.gan.losses import LOSSES
from ganarena.metrics.registry import BUILTIN, PRIMARY
from ganarena.report.dashboard import sweep_overrides, tensorboard_dirs
from ganarena.report.verdict import HEALTHS
from ganarena.run.records import HPARAM_KEYS, STATUSES, select

# The session metrics: the last point of each curve, i.e. the final evaluation (or the best).
# From the metric registry (`hparams` column titles); a run adds its plug-ins (session_metrics).
_COLUMNS = [(s.tag, s.hparams) for s in BUILTIN.values() if s.hparams]
METRICS = dict([_COLUMNS[0], (f"val/best_{PRIMARY.name}", f"best {PRIMARY.label}"), *_COLUMNS[1:]])
# Discrete domains the HParams tab shows as checkboxes (complete by construction).
DOMAINS = {"loss": sorted(LOSSES), "status": list(STATUSES), "health": list(HEALTHS)}
SHOWN = ("model", "loss", "seed", "health", "status")  # by default, beside the swept keys
DEFAULT_COLUMNS = 5  # the hparams the tab displays before any is ticked by hand


def session_metrics(declared: Mapping[str, Any] | None = None) -> dict[str, str]:
    """{tag: column title}: the built-in METRICS, then every plug-in metric a run declared
    (metrics.json "metrics", non-built-in names) as "final <label>"."""
    out = dict(METRICS)
    for name, d in (declared or {}).items():
        if name not in BUILTIN and isinstance(d, Mapping):
            out[f"val/{name}"] = f"final {d.get('label') or name}"
    return out


def _value(value: Any, kind: str) -> float | str:
    if kind == "num":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else math.nan
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        return "none"
    if isinstance(value, str) and "." in value and value.split(".")[0] == "torch":
        return value.rsplit(".", 1)[-1]  # torch.optim.Adam -> Adam
    return str(value)


def _name_of(key: str) -> str:
    """The hparam an override key sets (`loss` -> loss, `optim.g.lr` -> lr_g), or the
    key itself for a setting HPARAM_KEYS does not list."""
    return next((n for n, (p, _) in HPARAM_KEYS.items() if p in (key, f"{key}.name")), key)


def flatten_hparams(
    cfg: DictConfig | Mapping | None,
    summary: Mapping[str, Any],
    swept: Mapping[str, str] | None = None,
) -> dict:
    """The flat {name: float | str} hyperparameters of a run, the same names for every run of a
    sweep: HPARAM_KEYS, status, health, and any swept key HPARAM_KEYS lacks (as its override text).

    Values come from the train config; the metrics.json `config` block fills in what the config
    lacks (e.g. a run summarised without its config). `swept`: sweep_overrides().
    """
    if cfg is not None and not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    given = dict(summary.get("config") or {})
    out: dict[str, Any] = {}
    for name, (key, kind) in HPARAM_KEYS.items():
        value = None
        if cfg is not None:
            value = select(cfg, key)
        if value is None:
            value = given.get(name)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        out[name] = _value(value, kind)
    out["status"] = _value(summary.get("status"), "str")
    out["health"] = _value(summary.get("health"), "str")
    for key, line in (swept or {}).items():
        if _name_of(key) not in out:
            out[key] = line.split("=", 1)[1]
    return out


def shown_by_default(swept: Iterable[str]) -> list[str]:
    """The hparams marked `differs`: the swept ones, then SHOWN while there is room."""
    shown = list(dict.fromkeys(_name_of(k) for k in swept))
    for name in SHOWN:
        if len(shown) < DEFAULT_COLUMNS and name not in shown:
            shown.append(name)
    return shown


def _plugin_summary(tag: str, **content: Any):
    """A Summary holding hparams plugin data under `tag` (what the plugin's summary API writes)."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def hparams_summaries(
    hparams: Mapping[str, Any],
    shown: Sequence[str] = SHOWN,
    group: str = "",
    description: str = "",
    metrics: Mapping[str, str] | None = None,
) -> list:
    """The experiment, session-start and session-end Summary protos of TensorBoard's hparams
    plugin (tensorboard.plugins.hparams.summary builds the same ones but needs TensorFlow).

    `shown`: the hparams marked `differs` (displayed by default); `group`: the session group
    ("": a group of its own); `metrics`: {tag: title} of the session metrics (METRICS)."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    infos, values = [], {}
    for name, value in hparams.items():
        path = HPARAM_KEYS.get(name, (name,))[0]
        info = api_pb2.HParamInfo(name=name, description=path, differs=name in shown)
        if isinstance(value, str):
            values[name] = struct_pb2.Value(string_value=value)
            info.type = api_pb2.DATA_TYPE_STRING
            if name in DOMAINS:
                # an outside loss (loss=<your yaml>) joins the built-ins, or the tab would hide it
                info.domain_discrete.extend(
                    DOMAINS[name] + ([value] if value not in DOMAINS[name] else [])
                )
        else:
            values[name] = struct_pb2.Value(number_value=float(value))
            info.type = api_pb2.DATA_TYPE_FLOAT64
        infos.append(info)
    experiment = api_pb2.Experiment(
        description=description,
        hparam_infos=infos,
        metric_infos=[
            api_pb2.MetricInfo(
                name=api_pb2.MetricName(tag=tag),
                display_name=shown_name,
                description=f"the last point of the {tag} curve",
            )
            for tag, shown_name in (metrics or METRICS).items()
        ],
    )
    status = {
        "completed": api_pb2.STATUS_SUCCESS,
        "diverged": api_pb2.STATUS_FAILURE,
        "failed": api_pb2.STATUS_FAILURE,
        "interrupted": api_pb2.STATUS_UNKNOWN,
    }.get(str(hparams.get("status")), api_pb2.STATUS_UNKNOWN)
    now = time.time()
    start = plugin_data_pb2.SessionStartInfo(hparams=values, group_name=group, start_time_secs=now)
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=now)
    return [
        _plugin_summary(metadata.EXPERIMENT_TAG, experiment=experiment),
        _plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
    ]


def describe(swept: Iterable[str]) -> str:
    """The experiment description: what the rows are and which keys the sweep varies."""
    keys = list(swept)
    varies = f"The sweep varies {', '.join(keys)}. " if keys else ""
    return (
        f"ganarena-train runs, one row per run. {varies}Metrics: the last point of each val/* "
        "curve (the final evaluation; val/best_fid: the best FID of the run)."
    )


def write_hparams(
    log_dir: str | Path, summaries: list, verdict: str | None = None, step: int = 0
) -> None:
    """Write hparams plugin data (and the verdict as text) into a TensorBoard run folder."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        file_writer = writer._get_file_writer()
        for pb in summaries:
            file_writer.add_summary(pb)
        if verdict:
            writer.add_text("verdict", verdict, global_step=step)
    finally:
        writer.close()


@rank_zero_only
def log_hparams(loggers: Iterable[Any], cfg: DictConfig | None, summary: Mapping[str, Any]) -> None:
    """Log the run's flattened config, status and health (with the val/* curves' last points as
    its scores) and its verdict sentence to every TensorBoard logger, for the HParams tab.

    `summary` is the metrics.json dict. Call it once, after training (also after a divergence,
    so failed runs show up with status "diverged").
    """
    dirs = tensorboard_dirs(loggers)
    if not dirs:
        return
    swept = sweep_overrides() or {}
    hparams = flatten_hparams(cfg, summary, swept)
    group_by = OmegaConf.select(cfg, "tensorboard.group_by", default=None) if cfg else None
    group = ", ".join(f"{k}={hparams[k]}" for k in group_by or [])
    summaries = hparams_summaries(
        hparams, shown_by_default(swept), group, describe(swept),
        session_metrics(summary.get("metrics")),
    )  # fmt: skip
    step = int(summary.get("steps") or 0)
    for log_dir in dirs:
        write_hparams(log_dir, summaries, summary.get("verdict"), step=step)
