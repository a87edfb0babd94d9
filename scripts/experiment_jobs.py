"""What the experiment scripts (modern_recipes.py, reproduce_mode_collapse.py) share: run one
ganarena-train job into its folder (skipped when it already completed, so an interrupted script
continues; resumed from its last checkpoint when it completed fewer generator steps than now
asked, so a budget can be extended without retraining), one torch thread per job so parallel jobs
do not slow each other down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def completed_steps(folder: Path) -> int | None:
    """The generator steps of the completed run in `folder`, None if it holds none."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return int(metrics.get("steps") or 0) if metrics.get("status") == "completed" else None


def completed(folder: Path) -> bool:
    return completed_steps(folder) is not None


def run_job(args: list[str], folder: Path) -> str:
    """`ganarena-train *args` into `folder` (its stderr tail in job.log); one line saying how.
    A completed run with fewer steps than `trainer.max_steps=` in args continues from its
    last.ckpt (ckpt_path=last): the same run, trained on, as if it had been asked for more."""
    done = completed_steps(folder)
    wanted = next(
        (int(a.split("=", 1)[1]) for a in args if a.startswith("trainer.max_steps=")), None
    )
    if done is not None and (wanted is None or done >= wanted):
        return f"skip {folder}"
    start = ["ckpt_path=last"] if done is not None else ["overwrite=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    res = subprocess.run(
        [sys.executable, "-m", "ganarena.train", *args, *start],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / ("job.log" if done is None else f"job_resumed_from_{done}.log")
    log.write_text(res.stderr[-20000:])
    return f"{'ok' if res.returncode == 0 else 'FAILED'} {folder} ({time.time() - t0:.0f} s)"
