"""Shared entry-point plumbing: user errors become one paragraph on stderr and a non-zero exit."""

from __future__ import annotations

import logging
import math
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ganarena.errors import GanarenaError
from ganarena.run.files import write_json
from ganarena.run.runfolder import discard_stub

log = logging.getLogger("ganarena")

EXIT_USER_ERROR = 2


def in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not under Hydra (called from Python)
        return False


def run_cli(
    task: Callable[[DictConfig], Any], cfg: DictConfig, prog: str, run_folder: bool = False
) -> Any:
    """Run `task`; a GanarenaError is printed as `prog: error: ...` and exits with status 2.

    Inside a multirun the sweep goes on: the job's error is logged and +inf is returned, so a
    sweeper records the failure instead of dying with it. With `run_folder` (ganarena-train), a
    refused sweep job writes metrics.json {"status": "refused", "reason": ...} into its folder
    (unless one is there), and a refused single run removes the stub folder Hydra made for it.
    """
    try:
        return task(cfg)
    except GanarenaError as e:
        message = textwrap.fill(f"{prog}: error: {e}", width=100)
        folder = _output_dir() if run_folder else None
        if in_multirun():
            log.error(message)
            if folder is not None and not (folder / "metrics.json").exists():
                write_json(folder / "metrics.json", {"status": "refused", "reason": str(e)})
            return math.inf
        if folder is not None:
            discard_stub(folder)
        print(message, file=sys.stderr)
        sys.exit(getattr(e, "exit_code", EXIT_USER_ERROR))


def _output_dir() -> Path | None:
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra
        return None


# Options that moved when training recipes became tasks (tasks/): old spelling -> new spelling.
RENAMED = {
    "loss.d_norm": "model.d_norm",
    "r1": "task.r1",
    "r1.gamma": "task.r1.gamma",
    "r1.interval": "task.r1.interval",
}


def refuse_renamed(prog: str, argv: list[str]) -> None:
    """Exit 2 with the new spelling when a command line uses an option that has moved (Hydra
    would only say that the old key is not in the config)."""
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in RENAMED:
            new = arg.replace(key, RENAMED[key], 1).lstrip("+~")
            print(
                textwrap.fill(
                    f"{prog}: error: `{key}` has moved to `{RENAMED[key]}` (the discriminator's "
                    "normalisation belongs to the model, regularisers to the training task). Use "
                    f"`{new}` instead.",
                    width=100,
                ),
                file=sys.stderr,
            )
            sys.exit(EXIT_USER_ERROR)
