"""Hyperparameters and final scores for TensorBoard's HParams tab.

`tensorboard --logdir <sweep dir>` then lists one row per job (a *session*) with its flattened
config and `hp/fid`, `hp/is`, `hp/kid`, ... Sessions that differ only in their seed share a
*session group*, so the tab can average a variant over seeds.

Every run writes the same hparam names with the same types (None becomes NaN or "none"): the
plugin reads the experiment definition from one arbitrary run, so the runs must agree on it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ganarena.losses import LOSSES
from ganarena.records import HPARAM_KEYS, STATUSES, select

# hp/<name>: where its value comes from in metrics.json.
METRICS = {
    "hp/fid": ("final", "fid"),
    "hp/is": ("final", "is"),
    "hp/kid": ("final", "kid"),
    "hp/best_fid": ("best", "fid"),
    "hp/wall_s": (None, "wall_s"),
    "hp/imgs_per_s": (None, "imgs_per_s"),
}
# Discrete domains the HParams tab shows as checkboxes (complete by construction).
DOMAINS = {"loss": sorted(LOSSES), "status": list(STATUSES)}


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _str(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str) and "." in value and value.split(".")[0] == "torch":
        return value.rsplit(".", 1)[-1]  # torch.optim.Adam -> Adam
    return str(value)


def flatten_hparams(cfg: DictConfig | Mapping | None, summary: Mapping[str, Any]) -> dict:
    """The flat {name: float | str} hyperparameters of a run, the same names for every run.

    Values come from the train config; the metrics.json `config` block fills in what the config
    lacks (e.g. a run summarised without its config).
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
        out[name] = _num(value) if kind == "num" else _str(value)
    out["status"] = _str(summary.get("status"))
    return out


def final_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """hp/* values from a metrics.json summary; NaN where a score is missing."""
    out = {}
    for name, (block, key) in METRICS.items():
        source = summary if block is None else (summary.get(block) or {})
        out[name] = _num(source.get(key))
    return out


def group_name(hparams: Mapping[str, Any]) -> str:
    """Sessions with the same hyperparameters except the seed form one session group."""
    keep = {k: v for k, v in hparams.items() if k not in ("seed", "status")}
    return ", ".join(f"{k}={v}" for k, v in sorted(keep.items()))


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


def hparams_summaries(hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> list:
    """The experiment, session-start and session-end Summary protos of TensorBoard's hparams
    plugin (tensorboard.plugins.hparams.summary builds the same ones but needs TensorFlow)."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    infos, values = [], {}
    for name, value in hparams.items():
        if isinstance(value, str):
            values[name] = struct_pb2.Value(string_value=value)
            domain = DOMAINS.get(name)
            discrete = (
                struct_pb2.ListValue(values=[struct_pb2.Value(string_value=v) for v in domain])
                if domain
                else None
            )
            infos.append(
                api_pb2.HParamInfo(
                    name=name, type=api_pb2.DATA_TYPE_STRING, domain_discrete=discrete
                )
            )
        else:
            values[name] = struct_pb2.Value(number_value=float(value))
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DATA_TYPE_FLOAT64))
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metrics],
    )
    status = {
        "completed": api_pb2.STATUS_SUCCESS,
        "diverged": api_pb2.STATUS_FAILURE,
        "failed": api_pb2.STATUS_FAILURE,
        "interrupted": api_pb2.STATUS_UNKNOWN,
    }.get(str(hparams.get("status")), api_pb2.STATUS_UNKNOWN)
    now = time.time()
    start = plugin_data_pb2.SessionStartInfo(
        hparams=values, group_name=group_name(hparams), start_time_secs=now
    )
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=now)
    return [
        _plugin_summary(metadata.EXPERIMENT_TAG, experiment=experiment),
        _plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
    ]


def write_hparams(
    log_dir: str | Path, hparams: Mapping[str, Any], metrics: Mapping[str, float], step: int = 0
) -> None:
    """Write hparams plugin data and the hp/* scalars into a TensorBoard run folder."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        file_writer = writer._get_file_writer()
        for pb in hparams_summaries(hparams, metrics):
            file_writer.add_summary(pb)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, global_step=step)
    finally:
        writer.close()


def _tensorboard_dirs(loggers: Iterable[Any]) -> list[str]:
    from lightning.pytorch.loggers import TensorBoardLogger

    return [lg.log_dir for lg in loggers if isinstance(lg, TensorBoardLogger)]


@rank_zero_only
def log_hparams(loggers: Iterable[Any], cfg: DictConfig | None, summary: Mapping[str, Any]) -> None:
    """Log the run's flattened config with its final scores (hp/fid, hp/is, hp/kid, hp/best_fid,
    hp/wall_s, hp/imgs_per_s; NaN when missing) to every TensorBoard logger, for the HParams tab.

    `summary` is the metrics.json dict. Call it once, after training (also after a divergence,
    so failed runs show up with status "diverged").
    """
    dirs = _tensorboard_dirs(loggers or [])
    if not dirs:
        return
    hparams = flatten_hparams(cfg, summary)
    metrics = final_metrics(summary)
    step = int(summary.get("steps") or 0)
    for log_dir in dirs:
        write_hparams(log_dir, hparams, metrics, step=step)
