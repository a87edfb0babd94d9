"""A run folder is a record: never silently reused, appended to (not replaced) on resume.

`RunFolderGuard` is a Hydra callback (conf/train.yaml `hydra.callbacks`): it runs before Hydra
writes `.hydra/` into the folder, so a refusal leaves every existing byte as it was.

- A folder that holds a run (metrics.json or a checkpoint) is refused for a new run unless the
  command resumes it (`ckpt_path=...`, or a requeued SLURM job) or says `overwrite=true`.
- Resuming or overwriting first moves the previous `.hydra/*.yaml` into `.hydra/history/<n>/`,
  so the settings of every attempt stay on record.
- A path that is a file, or a folder that cannot be written, is refused up front.
- `+key=value` that adds an option nothing reads is refused (a typo that would be ignored).
- A single run refused after Hydra made its folder leaves no stub behind (`discard_stub`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ganarena.run.files import nearest_existing, writable_dir
from ganarena.run.slurm import register_launcher  # importing it registers ${ganarena.run.slurm:...}

EXIT_USER_ERROR = 2
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
# Top-level options that `+key=` may add: groups declared optional or null in train.yaml.
ADDABLE_GROUPS = ("experiment", "hparams_search", "local", "debug")

# The folder this process's single run created (None: it existed before, or not a CLI run).
created: Path | None = None


def holds_run(folder: Path) -> bool:
    """True when `folder` holds (part of) a run: its metrics.json or a checkpoint."""
    ckpts = folder / "checkpoints"
    return (folder / "metrics.json").is_file() or (ckpts.is_dir() and any(ckpts.glob("*.ckpt")))


def refuse(prog: str, message: str) -> None:
    print(textwrap.fill(f"{prog}: error: {message}", width=100), file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def check_writable(folder: Path, option: str) -> str | None:
    """Why `folder` cannot be a run folder, or None."""
    if folder.exists() and not folder.is_dir():
        return (
            f"{option}={folder} is a file, not a folder. Name a folder for the run (it is "
            f"created if missing), or drop {option} for a fresh timestamped one under outputs/."
        )
    probe = nearest_existing(folder)
    if not probe.is_dir():
        return (
            f"{option}={folder} lies under {probe}, which is a file. Name a folder path for the "
            "run, or drop the option for a fresh timestamped one under outputs/."
        )
    if not writable_dir(probe):
        return (
            f"{option}={folder}: {probe} is not writable, so the run could not save its "
            "checkpoints or results. Pick a writable place (e.g. under your home folder), or run "
            "from a writable working directory so outputs/ can be created."
        )
    return None


def resuming(cfg: DictConfig, folder: Path | None = None) -> bool:
    """Whether this run continues a run: ckpt_path=last/auto, a requeued SLURM job, or a
    checkpoint path; with `folder`, a checkpoint path only when it lies inside that folder (a
    checkpoint of another run continues *that* run, which must not replace this folder's)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt in ("last", "auto") or int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
        return True
    if ckpt is None or folder is None:
        return ckpt is not None
    return Path(str(ckpt)).resolve().is_relative_to(Path(folder).resolve())


def foreign_resume(folder: Path, cfg: DictConfig, option: str) -> str | None:
    """The refusal for resuming another run's checkpoint into a folder that holds a run."""
    ckpt = cfg.get("ckpt_path")
    if ckpt in (None, "last", "auto") or resuming(cfg, folder) or cfg.get("overwrite", False):
        return None
    if not holds_run(folder):
        return None
    own = Path(str(ckpt)).resolve().parent.parent
    return (
        f"ckpt_path={ckpt} is a checkpoint of another run ({own}), and {option}={folder} "
        "already holds a run of its own, which continuing that checkpoint there would replace. "
        f"Continue it in its own folder ({option}={own} ckpt_path=last), start it in a new "
        "folder (drop or change the option), or add overwrite=true to replace this one."
    )


def archive_record(folder: Path) -> Path | None:
    """Move the previous attempt's .hydra/*.yaml into .hydra/history/<n>/ (n = 1, 2, ...)."""
    hydra_dir = folder / ".hydra"
    present = [hydra_dir / f for f in HYDRA_FILES if (hydra_dir / f).is_file()]
    if not present:
        return None
    history = hydra_dir / "history"
    n = 1 + max((int(p.name) for p in history.glob("*") if p.name.isdigit()), default=0)
    dest = history / str(n)
    dest.mkdir(parents=True)
    for f in present:
        f.rename(dest / f.name)
    return dest


def check_run_folder(folder: Path, cfg: DictConfig, option: str) -> str | None:
    """Why a run may not start in `folder`, or None (then the old record is archived)."""
    problem = check_writable(folder, option)
    if problem:
        return problem
    foreign = foreign_resume(folder, cfg, option)
    if foreign:
        return foreign
    if holds_run(folder) and not resuming(cfg) and not cfg.get("overwrite", False):
        return (
            f"{option}={folder} already holds a run (its metrics.json or checkpoints), which a "
            "new run there would replace. Resume it with ckpt_path=last, choose another folder "
            f"(or drop {option} for a fresh timestamped one), or add overwrite=true to replace it."
        )
    if folder.is_dir() and (resuming(cfg) or cfg.get("overwrite", False)):
        archive_record(folder)
    return None


def check_added_keys(cfg: DictConfig) -> str | None:
    """`+key=value` that adds an option nothing reads: a misspelling Hydra would accept."""
    for override in cfg.hydra.overrides.task:
        if not override.startswith("+") or override.startswith("++"):
            continue
        key = override[1:].split("=", 1)[0].split("@", 1)[0]
        if "." not in key:
            if key in ADDABLE_GROUPS or read_by_interpolation(cfg, key):
                continue
            parent_ok = False
        else:
            parent = OmegaConf.select(cfg, key.rsplit(".", 1)[0], default=None)
            # Keys under a node that is built from _target_ reach its constructor, which checks
            # them (trainer flags, optimizer options, extra callbacks, network arguments).
            parent_ok = isinstance(parent, DictConfig) and (
                "_target_" in parent or key.startswith("callbacks.extra.")
            )
        if not parent_ok:
            return (
                f"`{override}` adds an option that ganarena does not read, so it would be "
                "silently ignored. Check the spelling against `ganarena-train --cfg job` and set "
                "the existing option without '+' (e.g. trainer.max_steps=500); '+' only adds "
                "arguments to objects built from _target_ (e.g. +trainer.fast_dev_run=true)."
            )
    return None


def read_by_interpolation(cfg: DictConfig, key: str) -> bool:
    """True when an interpolation elsewhere in the config names `key` (a helper value such as
    `+lr_at={...}` read by `${oc.select:lr_at....}`)."""
    text = OmegaConf.to_yaml(cfg)  # unresolved: interpolations stay as written
    pattern = r"\$\{[^\n]*?(?<![\w.])" + re.escape(key) + r"(?![\w])"
    return any(
        re.search(pattern, line) and not line.lstrip().startswith(f"{key}:")
        for line in text.splitlines()
    )


class RunFolderGuard(Callback):
    """Checks the run (or sweep) folder and the added keys before Hydra writes anything."""

    def __init__(self, prog: str = "ganarena-train") -> None:
        self.prog = prog

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        global created
        folder = Path(str(config.hydra.run.dir))
        problem = check_added_keys(config) or check_run_folder(folder, config, "hydra.run.dir")
        if problem:
            refuse(self.prog, problem)
        created = None if folder.exists() else folder.resolve()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        register_launcher()  # hydra/launcher=slurm: Hydra instantiates it next
        sweep = Path(str(config.hydra.sweep.dir))
        problem = check_added_keys(config) or check_writable(sweep, "hydra.sweep.dir")
        if not problem and sweep.is_dir():
            jobs = [j for j in sorted(sweep.iterdir()) if j.is_dir() and holds_run(j)]
            if jobs and not resuming(config) and not config.get("overwrite", False):
                problem = (
                    f"hydra.sweep.dir={sweep} already holds {len(jobs)} finished or started "
                    "jobs, which this sweep would replace. Resume them with ckpt_path=auto, "
                    "choose another folder (or drop hydra.sweep.dir for a fresh timestamped one), "
                    "or add overwrite=true to replace them."
                )
            for job in jobs if not problem else ():
                archive_record(job)
        if problem:
            refuse(self.prog, problem)


def discard_stub(folder: Path) -> bool:
    """Remove the folder this process created for a run refused before it produced anything
    (only Hydra's .hydra/ and the log in it). Returns True when removed."""
    global created
    folder = folder.resolve()
    if created is None or folder != created or not folder.is_dir():
        return False
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.is_file() and not (rel.parts[0] == ".hydra" or p.suffix == ".log"):
            return False
    shutil.rmtree(folder, ignore_errors=True)
    created = None
    return True
