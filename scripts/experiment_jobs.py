"""What the experiment scripts (modern_recipes.py, reproduce_mode_collapse.py) share: run one
ganarena-train job into its folder (skipped when it already completed, so an interrupted script
continues), one torch thread per job so parallel jobs do not slow each other down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def completed(folder: Path) -> bool:
    try:
        return json.loads((folder / "metrics.json").read_text())["status"] == "completed"
    except (OSError, ValueError, KeyError):
        return False


def run_job(args: list[str], folder: Path) -> str:
    """`ganarena-train *args` into `folder` (its stderr tail in job.log); one line saying how."""
    if completed(folder):
        return f"skip {folder}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    res = subprocess.run(
        [sys.executable, "-m", "ganarena.train", *args, "overwrite=true"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.log").write_text(res.stderr[-20000:])
    return f"{'ok' if res.returncode == 0 else 'FAILED'} {folder} ({time.time() - t0:.0f} s)"
