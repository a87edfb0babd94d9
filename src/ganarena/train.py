"""ganarena-train: compose the config, build everything with Hydra, fit, write the run folder."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from ganarena.cli import refuse_renamed, run_cli
from ganarena.errors import ConfigError, DivergedError
from ganarena.report.verdict import verdict
from ganarena.run.config import build, resolve_auto, validate_train
from ganarena.run.files import existing_checkpoint, remove_stale_temps, write_json
from ganarena.run.records import run_summary
from ganarena.run.runfolder import foreign_resume, holds_run, resuming

if TYPE_CHECKING:
    import lightning as L

# Lightning, torch and the tasks are imported inside the functions that use them: composing and
# checking a config (--help, --cfg job, a typo, a bad value) answers without loading them
# (tests/test_startup.py; startup rows in scripts/benchmark.py).

log = logging.getLogger("ganarena")

# Lightning warns that manual-optimization checkpoints hold post-step weights: that is what we want.
warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def conditional_classes(cfg: DictConfig, datamodule: Any) -> int:
    """The class count a conditional model takes from its dataset (refused without labels)."""
    classes = datamodule.num_classes
    if classes is None:
        raise ConfigError(
            f"model.conditional=true needs class labels, but dataset '{datamodule.resolved}' has "
            "none. Use a labelled dataset (e.g. dataset=mnist, or dataset=idx with dataset.labels="
            "<labels file>), or train unconditionally with model.conditional=false."
        )
    given = cfg.model.get("num_classes")
    if given is not None and int(given) != int(classes):
        raise ConfigError(
            f"model.num_classes={given} does not match the {classes} classes of dataset "
            f"'{datamodule.resolved}'. Drop model.num_classes: ganarena-train reads it from the data."
        )
    return int(classes)


def build_callbacks(cfg: DictConfig, run_dir: Path, evaluator: Any) -> list[L.Callback]:
    from ganarena.callbacks.checkpoint import StepCheckpoint
    from ganarena.callbacks.evaluation import EvaluationCallback
    from ganarena.callbacks.progress import GANProgressBar
    from ganarena.callbacks.samples import SampleGridCallback

    cb = cfg.callbacks
    callbacks: list[L.Callback] = [
        StepCheckpoint(
            cb.checkpoint.every_n_steps,
            dirpath=run_dir / "checkpoints",
            filename="step_{g_step:06.0f}",
            auto_insert_metric_name=False,
            monitor="g_step",
            mode="max",
            save_top_k=cb.checkpoint.keep,
            save_last=True,
            enable_version_counter=False,  # last.ckpt is replaced (atomically), never last-v1
        ),
        SampleGridCallback(
            cb.samples.every_n_steps,
            run_dir / "samples",
            eval_every_n_steps=cfg.eval.every_n_steps if evaluator is not None else 0,
        ),
    ]
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(GANProgressBar(refresh_rate=cb.get("progress_refresh", 10)))
    if evaluator is not None:
        during = cfg.eval.get("n_samples_during")
        callbacks.append(EvaluationCallback(evaluator, cfg.eval.every_n_steps, during))
    callbacks += [build(c) for c in (cb.get("extra") or {}).values()]
    return callbacks


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> L.Trainer:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from ganarena.callbacks.progress import quiet_lightning_tips
    from ganarena.run.checkpoint_io import AtomicCheckpointIO

    quiet_lightning_tips()  # no "💡 Tip: ... litlogger" advertisement in the run's log
    if str(cfg.trainer.precision) == "auto":  # a caller that built no task first
        choose_precision(cfg, None)

    loggers = [build(lg) for lg in (cfg.get("logger") or {}).values()]
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():  # submitit requeues (StopOnSignal); Lightning's auto-requeue off
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return build(
        cfg.trainer,
        max_steps=-1,  # ganarena stops on generator steps itself (Task.max_steps)
        max_epochs=-1,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
        num_sanity_val_steps=0,
        plugins=plugins,
    )


def build_evaluator(cfg: DictConfig, datamodule: Any) -> Any:
    """The evaluator the data's kind of samples calls for (image backbones, mixture scores, ...),
    or None."""
    from ganarena.metrics import build_evaluator as choose

    return choose(cfg.eval, datamodule, cfg.paths.cache_dir)


def compile_networks(task: Any, mode: str) -> None:
    """speed.compile: torch.compile each network the task trains, in place (nn.Module.compile),
    so parameter names, checkpoints and EMA copies stay as they are."""
    for name, net in task.named_children():
        if any(p.requires_grad for p in net.parameters()):
            net.compile(mode=mode)
            log.info("speed.compile=%s: compiled %s", mode, name)


def say(line: str) -> None:
    """One line for the user: on stdout, and into the run's train.log (not again on stderr)."""
    print(line, flush=True)
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, line, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def has_checkpoint(ckpt_dir: Path) -> bool:
    return (ckpt_dir / "last.ckpt").is_file() or any(ckpt_dir.glob("step_*.ckpt"))


def resolve_ckpt_path(value: str, ckpt_dir: Path) -> str | None:
    """ckpt_path=last: the newest checkpoint of this run folder (an error if there is none).
    ckpt_path=auto: the same if the folder has one, else None (a fresh start): what a requeued
    SLURM job runs, since its first attempt may have been stopped before the first checkpoint."""
    if value == "auto" and not has_checkpoint(ckpt_dir):
        log.info("ckpt_path=auto: no checkpoint in %s, starting a fresh run", ckpt_dir)
        return None
    from ganarena.tasks import newest_checkpoint

    return str(newest_checkpoint(ckpt_dir))


class StopOnSignal:
    """SIGUSR1/SIGUSR2 stop training like SIGTERM: at the next batch, then last.ckpt is saved.

    SLURM sends `--signal` seconds before the time limit: submitit (hydra/launcher=slurm) asks for
    USR2 (SUBMITIT_PREEMPT_SIGNAL changes it), Lightning's SLURM plugin for USR1. Holding USR1 also
    keeps Lightning's own auto-requeue (hpc_ckpt_N.ckpt + scontrol requeue) from being installed,
    so only submitit requeues. The handler that was there before (submitit's: dump the job and
    `scontrol requeue` it) runs by `hand_over` once last.ckpt and metrics.json are written; the
    requeued job repeats the same overrides and resumes with ckpt_path=auto.
    """

    SIGNALS = tuple(getattr(signal, s) for s in ("SIGUSR1", "SIGUSR2") if hasattr(signal, s))

    def __init__(self, trainer: L.Trainer) -> None:
        self.trainer = trainer
        self.received: tuple[int, Any] | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        log.warning("%s received: stopping at the next batch", signal.Signals(signum).name)
        self.received = (signum, frame)
        # Lightning's SIGTERM flag: the fit loop stops at the next batch boundary (all ranks).
        self.trainer._signal_connector.received_sigterm = True

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    def hand_over(self) -> None:
        """Call the previous handler of the signal received (submitit's requeue), if any."""
        self.restore()
        if self.received is not None:
            handler = self.previous.get(self.received[0])
            if callable(handler):
                handler(*self.received)


def train(cfg: DictConfig) -> float:
    """Train one run; returns the optimized metric (final FID, +inf if unavailable or failed)."""
    check_inputs(cfg)
    run_dir = prepare_run_dir(cfg)
    datamodule = setup_data(cfg, run_dir)
    task, precision_reason = build_run_task(cfg, datamodule.scored_as)
    start_step, start_images = resume_point(cfg, task, run_dir)
    transfer(cfg, task)
    fit = build_fit(cfg, run_dir, datamodule, start_step)
    summary = start_summary(cfg, task, run_dir, fit, precision_reason)
    t0 = time.perf_counter()
    stop = StopOnSignal(fit.trainer)
    exit_code: int | None = None
    try:
        exit_code = run_fit(cfg, task, datamodule, fit, summary, stop)
    finally:
        stop.restore()
        wall = time.perf_counter() - t0
        finish_summary(cfg, task, fit, summary, (start_step, start_images), wall)
        if fit.trainer.is_global_zero:
            write_json(run_dir / "metrics.json", summary)
            fit.log_hparams(summary)
            say(f"ganarena-train: {summary['verdict']}")
    if exit_code is not None:
        stop.hand_over()  # under submitit: requeue this job (it resumes with ckpt_path=auto)
        raise SystemExit(exit_code)
    if summary["status"] == "completed":
        fit.trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    if fit.trainer.is_global_zero:
        log.info("run folder: %s", run_dir)
    return sweep_value(cfg, summary)


# -- the steps of a run, in order -----------------------------------------------------------------
def check_inputs(cfg: DictConfig) -> None:
    """Named files exist and the config is valid, before anything heavy is imported."""
    if cfg.ckpt_path not in (None, "last", "auto"):
        existing_checkpoint(str(cfg.ckpt_path))  # a missing file is named before heavy imports
    if cfg.get("init_from") is not None:
        existing_checkpoint(str(cfg.init_from), "init_from")
    validate_train(cfg)


def prepare_run_dir(cfg: DictConfig) -> Path:
    """The run folder, created; refused when it holds a run this one would replace. Seeds."""
    import lightning as L

    from ganarena.report.dashboard import place_tensorboard

    place_tensorboard(cfg)  # checks tensorboard.*; a sweep job logs to <sweep>/tensorboard/<label>
    run_dir = Path(cfg.paths.output_dir)
    foreign = foreign_resume(run_dir, cfg, "hydra.run.dir")
    if foreign:
        raise ConfigError(foreign)
    if holds_run(run_dir) and not resuming(cfg) and not cfg.get("overwrite", False):
        raise ConfigError(
            f"{run_dir} already holds a run (its metrics.json or checkpoints), which a new run "
            "there would replace. Resume it with ckpt_path=last, choose another folder, or set "
            "overwrite=true to replace it."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    return run_dir


def setup_data(cfg: DictConfig, run_dir: Path) -> Any:
    """The datamodule, set up; the config learns what the data decided (the dataset really
    loaded, model.conditional=auto, the class count) and is saved again with it. An in-memory
    set is checked against the memory of as many copies as this node's DDP ranks will hold."""
    from ganarena.data import memory
    from ganarena.data.protocol import require_source

    datamodule = require_source(build(cfg.dataset), "dataset")
    datamodule.configure(
        shuffle_seed=cfg.seed if cfg.seed is not None else 0, batched=cfg.speed.batched_loader
    )
    with memory.holding(memory.copies_on_node(cfg.trainer)):
        datamodule.setup("fit")
    with open_dict(cfg):
        cfg.dataset.resolved = datamodule.resolved
        if cfg.model.get("conditional") == "auto":  # conditional where the data has labels
            cfg.model.conditional = bool(datamodule.num_classes)
            log.info(
                "model.conditional=auto: %s",
                f"class-conditional on the {datamodule.num_classes} classes of "
                f"'{datamodule.resolved}'"
                if cfg.model.conditional
                else f"unconditional ('{datamodule.resolved}' has no class labels)",
            )
        if cfg.model.conditional:
            cfg.model.num_classes = conditional_classes(cfg, datamodule)
    resolve_auto(cfg)
    saved_cfg = run_dir / ".hydra" / "config.yaml"
    if saved_cfg.parent.is_dir():  # record what was really loaded (e.g. a fallback dataset)
        OmegaConf.save(cfg, saved_cfg)
    return datamodule


def build_run_task(cfg: DictConfig, scored_as: str = "images") -> tuple[Any, str]:
    """The task the config names, carrying its resolved config (trainer.precision=auto decided
    for it and its data's kind, `scored_as`, first); compiled if asked. Also why it trains in
    its precision."""
    from ganarena.tasks import build_task

    task = build_task(cfg)
    why = choose_precision(cfg, task, scored_as)
    if cfg.speed.get("channels_last") is True:
        import torch

        task.to(memory_format=torch.channels_last)  # every 4-D weight, EMA copies included
    task.config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.speed.get("compile"):
        compile_networks(task, cfg.speed.compile)
    return task, why


def choose_precision(cfg: DictConfig, task: Any, scored_as: str = "images") -> str:
    """trainer.precision=auto resolved for this machine, model and kind of data
    (ganarena.run.precision), and speed.channels_last=auto with it (the layout the probe measured
    faster; NCHW wherever no probe ran); returns why the run trains in the precision it does
    (metrics.json precision_reason)."""
    auto_layout = cfg.get("speed", {}).get("channels_last", "auto") == "auto"
    if str(cfg.trainer.precision) != "auto":
        if auto_layout:
            with open_dict(cfg):
                cfg.speed.channels_last = False
        return "set by trainer.precision"
    from ganarena.run import precision

    batch = int(cfg.dataset.get("batch_size") or 1)
    cache = cfg.get("paths", {}).get("cache_dir")
    choice = precision.resolve(cfg.trainer, task, batch, scored_as, cache)
    with open_dict(cfg):
        cfg.trainer.precision = choice.precision
        if auto_layout:
            cfg.speed.channels_last = choice.channels_last
    log.info("trainer.precision=auto: %s (%s)", choice.precision, choice.why)
    if auto_layout and choice.channels_last:
        log.info("speed.channels_last=auto: true (the probe measured it faster under bf16)")
    return choice.why


def resume_point(cfg: DictConfig, task: Any, run_dir: Path) -> tuple[int, int]:
    """(generator step, real images seen) training starts from: zeros, or a compatible
    checkpoint's (ckpt_path,
    last/auto resolved in this folder; a requeued SLURM job always continues its folder)."""
    from ganarena.tasks import check_compatible, read_checkpoint

    if cfg.ckpt_path is None and int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0:
        # A requeued SLURM job (preempted or timed out) continues its own folder, never restarts
        # on top of it, even when its command lacks ckpt_path=auto.
        with open_dict(cfg):
            cfg.ckpt_path = "auto"
    if cfg.ckpt_path in ("last", "auto"):  # the newest checkpoint of this run folder
        with open_dict(cfg):
            cfg.ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir / "checkpoints")
    if cfg.ckpt_path is None:
        return 0, 0
    for stale in remove_stale_temps(run_dir / "checkpoints"):
        log.info("removed %s, half a checkpoint from a process that was killed", stale.name)
    ckpt = read_checkpoint(cfg.ckpt_path)
    check_compatible(task, ckpt, cfg.ckpt_path)
    start_step = int(ckpt["ganarena"]["g_step"])
    start_images = int(ckpt["ganarena"].get("real_images_seen", 0))
    if start_step >= int(cfg.trainer.max_steps):
        raise ConfigError(
            f"The checkpoint {cfg.ckpt_path} is at generator step {start_step}, and "
            f"trainer.max_steps={cfg.trainer.max_steps} counts steps from the start of the "
            "run, so there is nothing left to train. Raise trainer.max_steps above "
            f"{start_step} to continue (e.g. trainer.max_steps={2 * start_step}), or score "
            "the checkpoint with ganarena-eval ckpt_path=..."
        )
    return start_step, start_images


def transfer(cfg: DictConfig, task: Any) -> None:
    """Transfer learning: init_from's weights (not on a resume, which has its own), freeze_d."""
    from ganarena.tasks import init_weights

    if cfg.get("init_from") is not None and cfg.ckpt_path is None:
        init_weights(task, cfg.init_from)
        log.info("init_from: weights of %s (optimizers and counters start fresh)", cfg.init_from)
    if cfg.get("freeze_d"):
        frozen = task.freeze_d(int(cfg.freeze_d))
        log.info("freeze_d=%s: D's %s stay as loaded", cfg.freeze_d, ", ".join(frozen))


@dataclass
class Fit:
    """What fits the task: the trainer, its evaluator and evaluation callback, and (under
    ddp_spawn) the callback that carries the results back from the spawned processes."""

    cfg: DictConfig
    trainer: Any
    evaluator: Any
    eval_cb: Any
    spawn: Any

    def log_hparams(self, summary: dict) -> None:
        """The HParams view (TensorBoard) and, for the other loggers, config and final scores."""
        from ganarena.report.hparams import flatten_hparams, log_hparams, sweep_overrides
        from ganarena.report.loggers import log_run_end

        log_hparams(self.trainer.loggers, self.cfg, summary)
        hparams = flatten_hparams(self.cfg, summary, sweep_overrides() or {})
        log_run_end(self.trainer.loggers, hparams, summary)


def build_fit(cfg: DictConfig, run_dir: Path, datamodule: Any, start_step: int) -> Fit:
    from ganarena.callbacks.evaluation import EvaluationCallback
    from ganarena.callbacks.spawn import SpawnResults
    from ganarena.report.dashboard import log_config

    evaluator = build_evaluator(cfg, datamodule)
    callbacks = build_callbacks(cfg, run_dir, evaluator)
    eval_cb = next((c for c in callbacks if isinstance(c, EvaluationCallback)), None)
    spawned = "spawn" in str(cfg.trainer.get("strategy", ""))  # ddp_spawn[_find_unused_...]
    spawn = SpawnResults(run_dir / ".spawn_results.json", eval_cb) if spawned else None
    trainer = build_trainer(cfg, run_dir, [*callbacks, spawn] if spawned else callbacks)
    log_config(trainer.loggers, cfg, step=start_step)
    return Fit(cfg, trainer, evaluator, eval_cb, spawn)


def eval_settings(fit: Fit) -> dict | None:
    """metrics.json "eval": the evaluator's settings, with n_fake_during where the intermediate
    evaluations score fewer samples than the final one."""
    if fit.evaluator is None:
        return None
    settings = dict(fit.evaluator.settings)
    during = getattr(fit.eval_cb, "n_samples_during", None)
    if during is not None:
        settings["n_fake_during"] = during
    return settings


def start_summary(
    cfg: DictConfig, task: Any, run_dir: Path, fit: Fit, precision_reason: str
) -> dict[str, Any]:
    """metrics.json as it stands if the run fails before it ends."""
    from ganarena.report.dashboard import tensorboard_dir

    return {
        "status": "failed",
        "steps": 0,
        "wall_s": None,
        "imgs_per_s": None,
        "final": None,
        "best": None,
        "eval": eval_settings(fit),
        "trainer_precision": str(cfg.trainer.precision),
        "precision_reason": precision_reason,
        "config": {**run_summary(cfg), **task.summary()},
        "tensorboard": tensorboard_dir(fit.trainer.loggers, run_dir),
    }


def run_fit(
    cfg: DictConfig, task: Any, datamodule: Any, fit: Fit, summary: dict, stop
) -> int | None:
    """Trainer.fit, recording how it ended in `summary["status"]`; the exit code for a run
    stopped by a signal (its work saved in last.ckpt), None otherwise. Divergence propagates."""
    trainer = fit.trainer
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        if fit.spawn is not None:
            fit.spawn.restore(task)
        summary["status"] = "interrupted" if trainer.interrupted else "completed"
        return None
    except DivergedError:
        summary["status"] = "diverged"
        raise
    except (KeyboardInterrupt, SystemExit) as e:
        # SIGINT / SIGTERM / SIGUSR1-2: Lightning stops at a batch boundary and raises SystemExit;
        # keep the work done so far so `ckpt_path=last` (or auto) resumes from here.
        summary["status"] = "interrupted"
        run_dir = Path(cfg.paths.output_dir)
        trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        log.warning(
            "interrupted at generator step %d; resume with hydra.run.dir=%s ckpt_path=last",
            task.g_step,
            run_dir,
        )
        signum = stop.received[0] if stop.received is not None else signal.SIGTERM
        return e.code if isinstance(e, SystemExit) and e.code else 128 + signum


def finish_summary(
    cfg: DictConfig, task: Any, fit: Fit, summary: dict, start: tuple[int, int], wall: float
) -> None:
    """Counters, throughput (of this session: a resumed run counts only the images it read
    itself), scores and the verdict, however the run ended. `start`: (step, images) resumed from."""
    start_step, start_images = start
    eval_cb = fit.eval_cb
    eval_s = eval_cb.seconds if eval_cb is not None else 0.0
    summary.update(
        steps=task.g_step,
        wall_s=round(wall, 3),
        # Every rank sees its own batch: the run's throughput is world_size times one rank's.
        imgs_per_s=round(
            fit.trainer.world_size
            * (task.real_images_seen - start_images)
            / max(wall - eval_s, 1e-9),
            1,
        ),
        real_images_seen=fit.trainer.world_size * task.real_images_seen,
        train_s=round(wall - eval_s, 3),
        resumed_from=cfg.ckpt_path,
        start_step=start_step,
    )
    if eval_cb is not None:
        summary.update(final=eval_cb.final, best=eval_cb.best, metrics=eval_cb.declarations())
    summary["health"], summary["verdict"] = verdict(
        summary["status"], summary["final"], summary["eval"]
    )


def sweep_value(cfg: DictConfig, summary: dict) -> float:
    """The optimized metric a sweeper minimizes: its final value, +inf when there is none."""
    final = summary.get("final") or {}
    value = final.get(str(cfg.optimized_metric).split("/")[-1])
    return float(value) if value is not None and math.isfinite(value) else math.inf


@hydra.main(version_base="1.3", config_path="pkg://ganarena.conf", config_name="train")
def _main(cfg: DictConfig) -> float:
    return run_cli(train, cfg, "ganarena-train", run_folder=True)


def main() -> float:
    refuse_renamed("ganarena-train", sys.argv[1:])
    return _main()


if __name__ == "__main__":
    main()
