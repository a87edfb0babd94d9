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


# Options that moved: old prefix -> (new prefix, why). A key moves with everything under it
# (loss.optimizer_g.lr -> optim.g.lr).
_OPTIM = "optimizers and n_critic are the optim group; each loss picks its paper's"
_REG = "regularisers are one group, regularizer=[...]"
RENAMED: dict[str, tuple[str, str]] = {
    "loss.d_norm": ("model.d_norm", "the discriminator's normalisation belongs to the model"),
    "loss.optimizer_g": ("optim.g", _OPTIM),
    "loss.optimizer_d": ("optim.d", _OPTIM),
    "loss.n_critic": ("optim.n_critic", _OPTIM),
    "loss.gp_weight": ("regularizer.gp.weight", _REG + "; loss=wgan_gp brings gp, another loss adds it with regularizer=[gp]"),
    "loss.clip_value": ("regularizer.clip.value", _REG + "; loss=wgan brings clip, ~regularizer.clip drops it"),
    "task.r1": ("regularizer.r1", _REG + "; turn R1 on with regularizer=[r1] (experiment=stylegan2 and r3gan bring it)"),
    "task.path_length": ("regularizer.path_length", _REG + "; experiment=stylegan2 brings path_length"),
    "r1": ("regularizer.r1", _REG + "; turn R1 on with regularizer=[r1]"),
}  # fmt: skip


def renamed(arg: str) -> str | None:
    """The one-paragraph refusal for an override that uses a moved option, or None."""
    key = arg.split("=", 1)[0].lstrip("+~")
    for old in sorted(RENAMED, key=len, reverse=True):
        if key == old or key.startswith(old + "."):
            new_prefix, why = RENAMED[old]
            new_key = new_prefix + key[len(old) :]
            new = arg.replace(key, new_key, 1).lstrip("+~")
            return f"`{key}` has moved to `{new_key}` ({why}). Use `{new}` instead."
    return None


def refuse_renamed(prog: str, argv: list[str]) -> None:
    """Exit 2 with the new spelling when a command line uses an option that has moved (Hydra
    would only say that the old key is not in the config)."""
    for arg in argv:
        message = renamed(arg)
        if message:
            print(textwrap.fill(f"{prog}: error: {message}", width=100), file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
