"""Where a run's TensorBoard events go, and the text beside its curves.

A single run logs into <run>/tensorboard/. A sweep job logs into <sweep dir>/tensorboard/<label>/,
its label being the overrides that set it apart from the other jobs, e.g. `loss=hinge,seed=1`:
TensorBoard names a run by its folder under --logdir, so `tensorboard --logdir <sweep
dir>/tensorboard` lists the jobs by what they vary. metrics.json "tensorboard" records the folder
(relative to the run folder). Tags: `train/*` and `val/*` only (README "TensorBoard"), so Time
Series opens on those two groups, expanded; text: `config` (the resolved config, at the start)
and `verdict` (ganarena.report.hparams, at the end).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from ganarena.errors import ConfigError
from ganarena.run.records import hparam_names

MAX_LABEL = 200  # characters of a run label (a folder name)


def _multirun() -> Any:
    """Hydra's config of this job when it is part of a multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return hc if hc.mode == RunMode.MULTIRUN else None


def sweep_overrides() -> dict[str, str] | None:
    """{key: "key=value"} of this job's overrides of the keys its sweep varies, in command-line
    order; None outside a Hydra multirun. A key is swept when the command line sweeps it
    (`loss=a,b`, read from <sweep dir>/multirun.yaml) or the sweeper's params do (a preset's
    hydra.sweeper.params, Optuna's search space)."""
    hc = _multirun()
    if hc is None:
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.to_container(hc.sweeper, resolve=False).get("params") or {}
    lines = [f"{k}={v}" for k, v in params.items()]
    multirun = Path(hc.sweep.dir) / "multirun.yaml"
    if multirun.is_file():  # written by the basic sweeper before it launches the jobs
        lines += yaml.safe_load(multirun.read_text())["hydra"]["overrides"]["task"]
    parser = OverridesParser.create()
    swept = {o.key_or_group for o in parser.parse_overrides(lines) if o.is_sweep_override()}
    job = parser.parse_overrides(OmegaConf.to_container(hc.overrides.task, resolve=False))
    return {o.key_or_group: o.input_line for o in job if o.key_or_group in swept}


def sweep_label() -> str | None:
    """This sweep job's run label (its swept overrides joined by commas; else Hydra's
    override_dirname, else its job number), usable as a folder name; None outside a multirun."""
    overrides = sweep_overrides()
    if overrides is None:
        return None
    hc = _multirun()
    label = ",".join(overrides.values()) or hc.job.override_dirname or f"job{hc.job.num}"
    label = label.replace("/", "_").replace("\\", "_")
    if len(label) > MAX_LABEL:
        label = f"{label[: MAX_LABEL - 13]}-{hashlib.sha256(label.encode()).hexdigest()[:12]}"
    return label


def place_tensorboard(cfg: DictConfig) -> None:
    """Check `tensorboard.group_by`; point a sweep job's TensorBoard logger at
    <sweep dir>/tensorboard/<label> (unless logger.tensorboard.version is set by hand)."""
    group_by = list(OmegaConf.select(cfg, "tensorboard.group_by", default=None) or [])
    unknown = [k for k in group_by if k not in hparam_names()]
    if unknown:
        raise ConfigError(
            f"tensorboard.group_by names {', '.join(map(repr, unknown))}, which is no HParams "
            f"column. Choose among {', '.join(hparam_names())} (e.g. tensorboard.group_by="
            "[model,loss] to average seeds), or leave it null for one row per job."
        )
    tb = (cfg.get("logger") or {}).get("tensorboard")
    label = sweep_label()
    if tb is None or label is None or tb.get("version") != "":
        return
    with open_dict(cfg):
        tb.save_dir = str(Path(_multirun().sweep.dir).absolute())
        tb.version = label


def tensorboard_dirs(loggers: Iterable[Any]) -> list[str]:
    from lightning.pytorch.loggers import TensorBoardLogger

    return [lg.log_dir for lg in loggers or [] if isinstance(lg, TensorBoardLogger)]


def tensorboard_dir(loggers: Iterable[Any], run_dir: Path) -> str | None:
    """The first TensorBoard folder, relative to the run folder (metrics.json "tensorboard")."""
    dirs = tensorboard_dirs(loggers)
    return os.path.relpath(dirs[0], run_dir) if dirs else None


@rank_zero_only
def log_config(loggers: Iterable[Any], cfg: DictConfig, step: int = 0) -> None:
    """The resolved config as TensorBoard text `config` (and as the logger's hparams.yaml)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    text = OmegaConf.to_yaml(cfg, resolve=True)
    for lg in loggers or []:
        if isinstance(lg, TensorBoardLogger):
            lg.hparams = OmegaConf.to_container(cfg, resolve=True)
            # Indented: a Markdown code block, shown as written.
            lg.experiment.add_text("config", "    " + text.replace("\n", "\n    "), step)
