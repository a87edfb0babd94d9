"""The Python API: the four commands as functions, taking the same Hydra overrides.

    from ganarena import api

    run = api.train(["model=mlp", "trainer.max_steps=200", "eval=none"], out="runs/mlp")
    run.metrics["status"], run.checkpoint            # metrics.json, checkpoints/last.ckpt
    api.evaluate(run.checkpoint, ["eval.n_samples=2000"])["scores"]["fid"]
    api.generate(run.checkpoint, ["n=16", "out=grid.png"])
    api.compare(["outputs/train/multiruns/<date>_<time>"]).markdown

Every call checks its input as the command line does and raises ganarena.errors.GanarenaError
(one paragraph: the problem and the fix) on bad input. Sweeps (-m) stay on the command line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Run:
    """A finished (or failed) training run: its folder, metrics.json and final checkpoint."""

    path: Path
    metrics: dict[str, Any]
    value: float  # the optimized metric (final FID; inf when there is none)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.ckpt"


def config(overrides: Sequence[str] = (), name: str = "train") -> DictConfig:
    """The composed config of `ganarena-<name>` with `overrides` (name: train, evaluate or
    generate), as `--cfg job` prints it."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ganarena.cli import RENAMED
    from ganarena.errors import ConfigError

    for arg in overrides:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in RENAMED:
            raise ConfigError(
                f"`{arg}`: the option {key} is now {RENAMED[key]}; write "
                f"{arg.replace(key, RENAMED[key], 1).lstrip('+~')}."
            )
    if GlobalHydra.instance().is_initialized():  # e.g. called from inside a Hydra app
        GlobalHydra.instance().clear()
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose(name, overrides=list(overrides))


def train(overrides: Sequence[str] = (), out: str | Path | None = None) -> Run:
    """Train one run into `out` (default: outputs/train/runs/<date>_<time>, as the CLI)."""
    from datetime import datetime

    from ganarena.train import train as run_training

    if out is None:
        out = Path("outputs/train/runs") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    out = Path(out)
    cfg = config([*overrides, f"paths.output_dir={out}"])
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what `ckpt_path=last` resumes from
    value = run_training(cfg)
    return Run(out, json.loads((out / "metrics.json").read_text()), value)


def evaluate(ckpt_path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict:
    """ganarena-eval: the scores of a checkpoint (or of real=/fake= folders in `overrides`),
    the dict it prints; also saved beside the checkpoint as eval_<time>.json."""
    from ganarena.evaluate import evaluate as run_eval

    given = [] if ckpt_path is None else [f"ckpt_path={ckpt_path}"]
    return run_eval(config([*given, *overrides], "evaluate"))


def generate(ckpt_path: str | Path, overrides: Sequence[str] = ()) -> list[Path]:
    """ganarena-generate: the image files written (grid, folder, interpolation, mixing)."""
    from ganarena.generate import generate as run_generate

    return run_generate(config([f"ckpt_path={ckpt_path}", *overrides], "generate"))


def compare(sweeps: Sequence[str | Path], out: str | Path | None = None, **options: Any):
    """ganarena-compare: the Comparison of sweep folders (its table, pairwise tests, verdict),
    written into `out` (default: the first sweep folder); options as compare.compare takes."""
    from ganarena.compare import compare as run_compare

    return run_compare(list(sweeps), out=out, **options)
