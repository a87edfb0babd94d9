"""One home for what identifies a run: its statuses and the settings recorded in metrics.json,
compared by ganarena-compare and shown in TensorBoard's HParams tab."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# metrics.json "status": how a run ended. "refused": a sweep job whose settings were refused before
# training (metrics.json then holds only the status and the "reason").
STATUSES = ("completed", "diverged", "failed", "interrupted", "refused")

# The run-identity keys of metrics.json "config": name -> (config path, kind). In HParams, kind
# "num" is a number (None: NaN), "int" and "str" are text (None: "none"; integers as text, since
# the tab prints numbers as 1.0000). ganarena-compare groups by these names.
RUN_KEYS: dict[str, tuple[str, str]] = {
    "task": ("task.name", "str"),
    "model": ("model.name", "str"),
    "loss": ("loss.name", "str"),
    "dataset": ("dataset.name", "str"),
    "dataset_resolved": ("dataset.resolved", "str"),
    "seed": ("seed", "int"),
    "batch_size": ("dataset.batch_size", "int"),
    "max_steps": ("trainer.max_steps", "int"),
    "n_critic": ("optim.n_critic", "int"),
    "lr_g": ("optim.g.lr", "num"),
    "lr_d": ("optim.d.lr", "num"),
    "ema_decay": ("model.ema_decay", "num"),
    "conditional": ("model.conditional", "str"),
    "augment": ("augment.name", "str"),
    "r1_gamma": ("regularizer.r1.gamma", "num"),
}

# Further settings shown in HParams (not part of a run's identity in metrics.json).
HPARAM_KEYS: dict[str, tuple[str, str]] = {
    **RUN_KEYS,
    "dataset_limit": ("dataset.limit", "int"),
    "balance": ("dataset.balance", "str"),
    "decay_start": ("task.decay_start", "num"),
    "optim": ("optim.name", "str"),
    "optimizer_g": ("optim.g._target_", "str"),
    "optimizer_d": ("optim.d._target_", "str"),
    "beta1_g": ("optim.g.betas.0", "num"),
    "beta2_g": ("optim.g.betas.1", "num"),
    "beta1_d": ("optim.d.betas.0", "num"),
    "beta2_d": ("optim.d.betas.1", "num"),
    "clip_value": ("regularizer.clip.value", "num"),
    "gp_weight": ("regularizer.gp.weight", "num"),
    "label_smoothing": ("loss.label_smoothing", "num"),
    "d_norm": ("model.d_norm", "str"),
    "latent_dim": ("model.latent_dim", "int"),
    "spectral_norm": ("model.spectral_norm", "str"),
    "precision": ("trainer.precision", "str"),
    "devices": ("trainer.devices", "str"),
    "eval_backbone": ("eval.backbone", "str"),
    "eval_n_samples": ("eval.n_samples", "int"),
    # translation tasks (task=cyclegan); NaN for other tasks
    "lambda_cycle": ("task.lambda_cycle", "num"),
    "lambda_identity": ("task.lambda_identity", "num"),
    "pool_size": ("task.pool_size", "int"),
}


def hparam_names() -> list[str]:
    """The HParams columns: the settings above, then how the run ended."""
    return [*HPARAM_KEYS, "status", "health"]


# Where keys lived before (tasks; the optim and regularizer groups): old runs' saved configs are
# read there. A prefix moves with everything under it; homes are tried newest first.
LEGACY_PATHS = {
    "regularizer.r1": "task.r1",
    "task.r1": "r1",
    "model.d_norm": "loss.d_norm",
    "optim.g": "loss.optimizer_g",
    "optim.d": "loss.optimizer_d",
    "optim.n_critic": "loss.n_critic",
    "regularizer.gp.weight": "loss.gp_weight",
    "regularizer.clip.value": "loss.clip_value",
}


def _older(path: str) -> str | None:
    for new, old in LEGACY_PATHS.items():
        if path == new or path.startswith(new + "."):
            return old + path[len(new) :]
    return None


def select(cfg: DictConfig, path: str, default: Any = None) -> Any:
    """The value at `path` (or its earlier homes) in a saved or live config."""
    value = OmegaConf.select(cfg, path, default=default, throw_on_resolution_failure=False)
    older = _older(path)
    while value is default and older is not None:
        value = OmegaConf.select(cfg, older, default=default, throw_on_resolution_failure=False)
        older = _older(older)
    return value


def run_summary(cfg: DictConfig) -> dict[str, Any]:
    """The settings that identify a run in metrics.json (and in comparisons)."""
    out = {}
    for name, (path, _kind) in RUN_KEYS.items():
        value = select(cfg, path)
        if name == "dataset_resolved" and value is None:
            value = select(cfg, "dataset.name")
        if name == "conditional":
            value = bool(value)
        if name == "augment" and value is None:
            value = "none"
        if name == "task" and value is None:
            value = "gan"
        out[name] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    transforms = [k for k, v in (select(cfg, "d_input") or {}).items() if v is not None]
    if transforms:  # D-input transforms (d_input=[...]), in the order they apply
        out["d_input"] = ",".join(transforms)
    penalties = [k for k, v in (select(cfg, "regularizer") or {}).items() if v is not None]
    if penalties:  # plug-in regularisers (regularizer=[...])
        out["regularizer"] = ",".join(penalties)
    return out
