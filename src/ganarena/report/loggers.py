"""What ganarena logs beyond Lightning's scalars, for every logger it ships (conf/logger/):
TensorBoard (images, the HParams view: dashboard.py, hparams.py), CSV (Lightning's CSVLogger:
metrics.csv, hparams.yaml), MLflow (a local file store: params, metrics, sample grids as
artifacts) and Weights & Biases (offline by default: config, summary, sample grids). Lightning
sends the train/* and val/* scalars to all of them; this module adds the sample grids and, at the
end of a run, the flattened config with its final scores."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)


def _kind(logger: Any) -> str:
    """tensorboard, csv, mlflow, wandb or other (by class, without importing optional packages)."""
    name = type(logger).__name__
    return {
        "TensorBoardLogger": "tensorboard",
        "CSVLogger": "csv",
        "MLFlowLogger": "mlflow",
        "WandbLogger": "wandb",
    }.get(name, "other")


def log_image(loggers: Iterable[Any], tag: str, picture: Any, step: int) -> None:
    """A sample grid (a (C, H, W) tensor in [0, 1]) or a matplotlib figure, to every logger
    that keeps images."""
    import numpy as np
    from torch import Tensor

    for lg in loggers:
        kind = _kind(lg)
        if kind == "tensorboard":
            if isinstance(picture, Tensor):
                lg.experiment.add_image(tag, picture, step)
            else:
                lg.experiment.add_figure(tag, picture, step, close=False)
            continue
        if kind not in ("mlflow", "wandb"):
            continue
        if isinstance(picture, Tensor):
            image = (picture.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round()
            image = image.astype(np.uint8)
        else:
            picture.canvas.draw()
            image = np.asarray(picture.canvas.buffer_rgba())[..., :3]
        if kind == "wandb":
            lg.log_image(key=tag, images=[image], step=step)
        else:
            name = f"{tag.replace('/', '_')}_{step:06d}.png"
            lg.experiment.log_image(lg.run_id, image, artifact_file=f"samples/{name}")


def log_run_end(loggers: Iterable[Any], hparams: Mapping[str, Any], summary: Mapping) -> None:
    """The flattened config and the final scores (`summary`: metrics.json), to the loggers
    without TensorBoard's HParams view (which hparams.log_hparams writes itself)."""
    final = summary.get("final") or {}
    scores = {f"final/{k}": float(v) for k, v in final.items() if _number(v)}
    for lg in loggers:
        kind = _kind(lg)
        if kind in ("tensorboard", "other"):
            continue
        lg.log_hyperparams(dict(hparams))
        if scores:
            lg.log_metrics(scores, step=int(summary.get("steps") or 0))
        if kind == "wandb":
            lg.experiment.summary.update({**scores, "verdict": summary.get("verdict")})
        lg.finalize("success")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
