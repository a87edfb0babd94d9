"""The Python API: the four commands as functions, taking the same Hydra overrides.

    import ganarena

    result = ganarena.fit(["model=mlp", "trainer.max_steps=200"], out="runs/mlp")
    result.scores["fid"], result.verdict, result.path     # final scores, the run's verdict
    model = ganarena.load(result.checkpoint)
    images = model.sample(16, seed=0)                     # (16, C, H, W) in [-1, 1]
    table = ganarena.compare(["outputs/train/multiruns/<date>_<time>"])
    table[0]["loss"], table.markdown, table.to_pandas()   # rows of dicts, comparison.md

and the rest of the commands: `ganarena.api.evaluate(ckpt, overrides)` (the scores dict),
`ganarena.api.generate(ckpt, overrides)` (files written), `ganarena.api.config(overrides)`.
Every call checks its input as the command line does and raises ganarena.errors.GanarenaError
(one paragraph: the problem and the fix) on bad input, never SystemExit. Sweeps (-m) stay on
the command line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Result:
    """A finished (or failed) training run: its folder, metrics.json and final checkpoint."""

    path: Path
    metrics: dict[str, Any]
    value: float  # the optimized metric (final FID; inf when there is none)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.ckpt"

    @property
    def scores(self) -> dict[str, float]:
        """The final scores (metrics.json "final"; empty with eval=none)."""
        return dict(self.metrics.get("final") or {})

    @property
    def verdict(self) -> str | None:
        """The run's one-line verdict (e.g. looks healthy / mode collapse), as the CLI prints."""
        return self.metrics.get("verdict")

    @property
    def status(self) -> str:
        return self.metrics.get("status", "unknown")


Run = Result  # the name of the first API


class Model:
    """A trained generator loaded from a checkpoint (`ganarena.load`)."""

    def __init__(self, task: Any, config: DictConfig, path: Path) -> None:
        self.task, self.config, self.path = task, config, path

    @property
    def num_classes(self) -> int | None:
        return self.task.num_classes

    def sample(
        self, n: int, seed: int = 0, label: int | None = None, psi: float = 1.0, start: int = 0
    ):
        """`n` images (N, C, H, W) in [-1, 1]: items start..start+n-1 of the sample stream of
        `seed` (image i depends only on (seed, i), as ganarena-generate's and the evaluation's),
        from the EMA generator where the run kept one.
        `label`: one class for all (conditional models; default: classes in turn); `psi`:
        truncation (style-based models only)."""
        import torch

        from ganarena.errors import ConfigError, check_int, check_memory

        n = check_int("n", n, 1, fix="Pass e.g. sample(16).")
        seed = check_int("seed", seed, 0, fix="Pass e.g. sample(16, seed=0).")
        labels = None
        if label is not None:
            if self.num_classes is None:
                raise ConfigError(
                    f"label={label}: this model is unconditional (it was trained without class "
                    "labels), so it draws no class on demand. Drop label."
                )
            label = check_int("label", label, 0, fix="Pass e.g. sample(16, label=3).")
            if label >= self.num_classes:
                raise ConfigError(
                    f"label={label}: this model knows classes 0..{self.num_classes - 1}. Pass one "
                    "of them, or no label for the classes in turn."
                )
            labels = torch.full((n,), label, dtype=torch.long)
        c, h, w = self.task.sample(1, seed)[0].shape[1:]
        check_memory(
            4.0 * n * c * h * w, f"sample({n}) ({n} images of {c}x{h}x{w}, float32)",
            "Draw them in chunks: sample(n, seed, start=k) gives items k..k+n-1 of the same stream.",
        )  # fmt: skip
        start = check_int("start", start, 0, fix="Pass e.g. sample(16, start=0).")
        images, _ = self.task.sample(n, seed, labels=labels, start=start, psi=psi)
        return images


def load(ckpt_path: str | Path) -> Model:
    """The generator of a ganarena checkpoint (<run>/checkpoints/last.ckpt), ready to sample."""
    from ganarena.errors import ConfigError
    from ganarena.run.files import existing_checkpoint
    from ganarena.tasks import load_task

    path = existing_checkpoint(ckpt_path)
    task, cfg = load_task(path)
    if task.kind != "generative":
        raise ConfigError(
            f"'{path}' holds a {task.kind} model (it maps images to images), which has no noise "
            "to sample from. Translate images with ganarena.api.generate(ckpt, "
            "['translate=<folder>']) instead."
        )
    return Model(task, cfg, path)


class Table(Sequence):
    """ganarena.compare's result: one dict per variant (the rows of comparison.csv), the
    markdown report (comparison.md) and every file written."""

    def __init__(self, rows: list[dict[str, Any]], markdown: str, files: list[Path]) -> None:
        self.rows, self.markdown, self.files = rows, markdown, files

    def __getitem__(self, i):
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)

    def to_pandas(self):
        import pandas as pd  # optional: only for this call

        return pd.DataFrame(self.rows)


def config(overrides: Sequence[str] = (), name: str = "train") -> DictConfig:
    """The composed config of `ganarena-<name>` with `overrides` (name: train, evaluate or
    generate), as `--cfg job` prints it."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from ganarena.cli import renamed
    from ganarena.errors import ConfigError

    for arg in overrides:
        message = renamed(arg)
        if message:
            raise ConfigError(message)
    if GlobalHydra.instance().is_initialized():  # e.g. called from inside a Hydra app
        GlobalHydra.instance().clear()
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose(name, overrides=list(overrides))


def fit(overrides: Sequence[str] = (), out: str | Path | None = None) -> Result:
    """Train one run into `out` (default: outputs/train/runs/<date>_<time>, as the CLI)."""
    return train(overrides, out)


def train(overrides: Sequence[str] = (), out: str | Path | None = None) -> Result:
    """ganarena-train: one run into `out` (default: outputs/train/runs/<date>_<time>)."""
    from datetime import datetime

    from ganarena.train import train as run_training

    if out is None:
        out = Path("outputs/train/runs") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}"
    out = Path(out)
    cfg = config([*overrides, f"paths.output_dir={out}"])
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")  # what `ckpt_path=last` resumes from
    value = run_training(cfg)
    return Result(out, json.loads((out / "metrics.json").read_text()), value)


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


def compare(sweeps: Sequence[str | Path], out: str | Path | None = None, **options: Any) -> Table:
    """ganarena-compare: the table of sweep (or run) folders — one row per variant, mean and
    spread over seeds, ranks and tests — written into `out` (default: the first folder);
    options as ganarena.report.compare.compare takes (group_by, metric, test, ci, level, ...)."""
    import csv

    from ganarena.report.compare import compare as run_compare

    done = run_compare(list(sweeps), out=out, **options)
    table = next(p for p in done.files if p.suffix == ".csv" and not p.stem.endswith("_pairs"))
    with table.open(newline="") as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    return Table(rows, done.markdown, done.files)
