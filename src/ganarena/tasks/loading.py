"""Build a task from a train config, and rebuild one from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ganarena.errors import CheckpointError, ConfigError
from ganarena.run.files import existing_checkpoint
from ganarena.tasks.base import Task


def build_task(cfg: DictConfig) -> Task:
    """Instantiate `cfg.task` (its networks, loss and optimizers come through interpolations)."""
    from ganarena.run.config import build, resolve_auto

    resolve_auto(cfg)
    return build(cfg.task)


def read_checkpoint(path: str | Path, option: str = "ckpt_path") -> dict[str, Any]:
    """Load a checkpoint file safely (weights_only) or raise CheckpointError saying why (`option`:
    the setting that named it)."""
    path = existing_checkpoint(path, option)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
        lines = str(e).splitlines()
        raise CheckpointError(
            f"{option}={path}: the checkpoint is corrupt or not a PyTorch checkpoint "
            f"({type(e).__name__}{': ' + lines[0][:200] if lines else ''}). Use another "
            f"checkpoint from the run's checkpoints/ folder, or drop {option}."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "ganarena" not in ckpt:
        raise CheckpointError(
            f"Checkpoint '{path}' was not written by ganarena-train (no model state or ganarena "
            "counters). Pass checkpoints/last.ckpt from a ganarena run folder."
        )
    return ckpt


def newest_checkpoint(ckpt_dir: str | Path) -> Path:
    """The checkpoint with the most generator steps in a run's checkpoints/ folder.

    `last.ckpt` is normally it, but a kill between writing `step_N.ckpt` and refreshing
    `last.ckpt` can leave the numbered file newer.
    """
    ckpt_dir = Path(ckpt_dir)
    candidates: list[tuple[int, Path]] = []
    for path in ckpt_dir.glob("step_*.ckpt"):
        try:
            candidates.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    last = ckpt_dir / "last.ckpt"
    if last.is_file():
        candidates.append((int(read_checkpoint(last)["ganarena"]["g_step"]), last))
    if not candidates:
        raise CheckpointError(
            f"Checkpoint not found: no last.ckpt or step_*.ckpt in '{ckpt_dir}'. ckpt_path=last "
            "resumes the run folder given by hydra.run.dir=<run folder>; check that folder, or "
            "drop ckpt_path to start a fresh run."
        )
    return max(candidates, key=lambda c: (c[0], c[1].name == "last.ckpt"))[1]


def check_compatible(
    task: Task, ckpt: dict[str, Any], path: str | Path, option: str = "ckpt_path"
) -> None:
    """Raise CheckpointError when the checkpoint's weights do not fit `task`."""
    own = task.state_dict()
    theirs = ckpt["state_dict"]
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    wrong = [k for k in own if k in theirs and own[k].shape != theirs[k].shape]
    if missing or unexpected or wrong:
        saved = ckpt.get("ganarena_config", {})
        what = (
            f"task={saved.get('task', {}).get('name', 'gan')}, "
            f"model={saved.get('model', {}).get('name')}, "
            f"dataset={saved.get('dataset', {}).get('name')}"
            if saved
            else "another configuration"
        )
        first = (missing or unexpected or wrong)[0]
        raise CheckpointError(
            f"Checkpoint '{path}' does not fit this model: it was written for {what} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped "
            f"tensors, e.g. '{first}'). Use the same task/model/dataset/EMA settings as the run "
            f"that wrote it (see its .hydra/config.yaml), or drop {option}."
        )


def upgrade_config(cfg: DictConfig) -> DictConfig:
    """A config saved by an earlier ganarena, in today's layout: before tasks existed (no `task`
    key: add `task=gan`, loss.d_norm -> model.d_norm, r1 -> task.r1), and before the optim and
    regularizer groups (the GAN task's r1 / path_length / gp_weight / clip_value -> regularizer
    entries; its optimizers keep reading the loss's saved blocks)."""
    if "task" not in cfg:
        from hydra import compose, initialize_config_module

        with initialize_config_module("ganarena.conf", version_base="1.3"):
            task = compose("train", overrides=["task=gan", "regularizer=[r1]"]).task
        with open_dict(cfg):
            cfg.task = OmegaConf.to_container(task, resolve=False)
            cfg.model.d_norm = cfg.loss.pop("d_norm", "batch")
            cfg.task.r1 = cfg.pop("r1", {"gamma": 0.0})
    return _upgrade_regularizers(cfg)


_OLD_TERMS = {  # old task key -> (regulariser entry, Penalty class, what turns it on)
    "r1": ("r1", "R1", "gamma"),
    "path_length": ("path_length", "PathLength", "weight"),
}


def _upgrade_regularizers(cfg: DictConfig) -> DictConfig:
    task = cfg.task
    old = [k for k in ("r1", "path_length", "gp_weight", "clip_value") if k in task]
    if not old:
        return cfg
    with open_dict(cfg):
        entries = dict(cfg.get("regularizer") or {})
        for key, (name, cls, on) in _OLD_TERMS.items():
            node = task.pop(key) if key in task else {}
            node = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
            if node and node.get(on):
                entries[name] = {"_target_": f"ganarena.gan.penalties.{cls}", **node}
        gp = OmegaConf.select(cfg, "task.gp_weight")
        if gp:
            entries["gp"] = {"_target_": "ganarena.gan.penalties.GradientPenalty", "weight": gp}
        clip = OmegaConf.select(cfg, "task.clip_value")
        if clip is not None:
            entries["clip"] = {"_target_": "ganarena.gan.penalties.WeightClip", "value": clip}
        for key in ("gp_weight", "clip_value"):
            task.pop(key, None)
        cfg.regularizer = entries
        task.regularizers = "${regularizer}"
    return cfg


# state-dict keys that moved with the regularizer group: old -> new
_MOVED_STATE = {"path_length.pl_mean": "penalties.path_length.length.pl_mean"}


def load_task(ckpt_path: str | Path, map_location: str = "cpu") -> tuple[Task, DictConfig]:
    """Rebuild the task saved in a ganarena checkpoint; returns (task, train config)."""
    ckpt = read_checkpoint(ckpt_path)
    if "ganarena_config" not in ckpt:
        raise CheckpointError(
            f"Checkpoint '{ckpt_path}' carries no ganarena config, so its model cannot be rebuilt. "
            "Pass a checkpoint written by ganarena-train."
        )
    cfg = upgrade_config(OmegaConf.create(ckpt["ganarena_config"]))
    for old, new in _MOVED_STATE.items():
        if old in ckpt["state_dict"]:
            ckpt["state_dict"][new] = ckpt["state_dict"].pop(old)
    task = build_task(cfg)
    check_compatible(task, ckpt, ckpt_path)
    task.load_state_dict(ckpt["state_dict"])
    task.load_counters(ckpt["ganarena"])
    task.config = OmegaConf.to_container(cfg, resolve=True)
    task.eval()
    return task.to(map_location), cfg


def init_weights(task: Task, path: str | Path) -> None:
    """Transfer learning: the weights of another run's checkpoint (networks, EMA copies, fixed
    latents), nothing else: optimizers, counters and schedules start fresh."""
    ckpt = read_checkpoint(path, "init_from")
    check_compatible(task, ckpt, path, option="init_from")
    task.load_state_dict(ckpt["state_dict"])


def freeze_layers(net: torch.nn.Module, k: int) -> list[str]:
    """FreezeD (Mo et al. 2020): stop training the first `k` weight layers of `net` (in module
    order) and any normalisation layers before the k+1-th. Returns the frozen names. A network
    whose layers are its own classes (StyleGAN2's equalised-lr layers) names them in its
    `freezable_layers` class attribute; plain torch convolution/linear layers otherwise."""
    kinds = getattr(net, "freezable_layers", (torch.nn.Conv2d, torch.nn.Linear))
    total = sum(isinstance(m, kinds) for m in net.modules())
    if total < 2:
        raise ConfigError(
            f"freeze_d={k}: the discriminator ({type(net).__name__}) has {total} weight layer(s) "
            "FreezeD can freeze, and its last one must learn, so nothing can be frozen. Drop "
            "freeze_d, or give the model a `freezable_layers` class attribute naming its layers."
        )
    if k >= total:
        raise ConfigError(
            f"freeze_d={k}, but the discriminator has {total} weight layers and its last one must "
            f"learn. Freeze at most {total - 1}."
        )
    frozen, layers = [], 0
    for name, module in net.named_modules():
        if isinstance(module, kinds):
            layers += 1
            if layers > k:
                break
        params = list(module.parameters(recurse=False))
        if params:
            for p in params:
                p.requires_grad_(False)
            frozen.append(name)
    return frozen
