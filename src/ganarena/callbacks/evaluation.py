"""Periodic FID/IS/KID evaluation during training, logged as val/* and kept for metrics.json."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L

from ganarena.errors import ConfigError
from ganarena.metrics.registry import BUILTIN, LOGGED, PRIMARY

log = logging.getLogger(__name__)

__all__ = ["LOGGED", "EvaluationCallback", "sync_sampler"]  # LOGGED: the registry's


def sync_sampler(pl_module) -> None:
    """Give every rank rank zero's sampling networks: DDP keeps parameters in step, but batch-norm
    running statistics (and an EMA of them) are per rank until the next forward broadcasts them."""
    import torch.distributed as dist

    for net in pl_module.sampling_modules():
        for t in [*net.parameters(), *net.buffers()]:
            dist.broadcast(t.data, src=0)


class EvaluationCallback(L.Callback):
    """Scores the module every `every_n_steps` generator steps (`pl_module.g_step`) and at the end.

    `history` holds {"step", "n_samples", **scores} per evaluation, `final` the last scores and
    `best` {"fid", "step"} of the lowest FID (the registry's PRIMARY metric), plus {name: {"value",
    "step"}} of each plug-in metric's best (by its own direction); all three are saved in
    checkpoints so a resumed run keeps them. With `n_samples_during` (eval.n_samples_during) the
    evaluations before the last generator step score that many samples, the last one the
    evaluator's n_samples: FID is biased upwards at small n, so `best` counts only the full-size
    evaluations (the curve's earlier points compare with each other, not with the final score). What is logged (val/<name>) and declared in
    metrics.json "metrics" comes from the metric registry and the evaluator's plug-ins.
    Under DDP every rank generates and embeds its share of the samples, the features are
    gathered (Evaluator.score_module), every rank computes the same scores; only rank zero logs.
    """

    def __init__(self, evaluator, every_n_steps: int, n_samples_during: int | None = None):
        if every_n_steps is not None and (isinstance(every_n_steps, bool) or every_n_steps < 0):
            raise ConfigError(
                f"eval.every_n_steps must be a positive integer (or 0 for the final evaluation only), "
                f"got {every_n_steps!r}."
            )
        if n_samples_during is not None and (
            isinstance(n_samples_during, bool)
            or not isinstance(n_samples_during, int)
            or n_samples_during < 2
        ):
            raise ConfigError(
                f"eval.n_samples_during must be an integer >= 2 (the samples each intermediate "
                f"evaluation scores; FID needs two) or null (= eval.n_samples), got "
                f"{n_samples_during!r}. E.g. eval.n_samples_during=2000."
            )
        self.evaluator = evaluator
        self.every_n_steps = every_n_steps or 0
        full = getattr(evaluator, "n_samples", None)
        # only evaluators that draw their samples at scoring time can score fewer in between
        cheaper = n_samples_during is not None and full is not None and n_samples_during < full
        self.n_samples_during = (
            n_samples_during if cheaper and getattr(evaluator, "resizable", False) else None
        )
        self.history: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None
        self.best: dict[str, Any] | None = None
        self.seconds = 0.0  # wall time spent evaluating (excluded from training throughput)

    def _done(self, step: int) -> dict | None:
        return next((h for h in self.history if h["step"] == step), None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(pl_module.g_step)
        n = self.every_n_steps
        if n and step > 0 and step % n == 0 and self._done(step) is None:
            final = pl_module.max_steps is not None and step >= pl_module.max_steps
            self.evaluate(trainer, pl_module, full=final)

    def on_train_end(self, trainer, pl_module) -> None:
        step = int(pl_module.g_step)
        done = self._done(step)
        full = getattr(self.evaluator, "n_samples", None)
        if done is not None and done.get("n_samples", full) == full:
            self.final = {k: v for k, v in done.items() if k not in ("step", "n_samples")}
        elif step > 0:  # not scored yet, or only with n_samples_during samples
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer, pl_module, full: bool = True) -> dict[str, Any]:
        """Score the module now (with n_samples_during samples unless `full`), record the result
        and log it."""
        t0 = time.perf_counter()
        step = int(pl_module.g_step)
        world = trainer.world_size
        if world > 1:
            sync_sampler(pl_module)
        n = None if full else self.n_samples_during
        with self._n_samples(n):
            scores = self.evaluator.score_module(
                pl_module, rank=trainer.global_rank, world_size=world
            )
        self.seconds += time.perf_counter() - t0
        self.history.append({"step": step, "n_samples": n or self.evaluator.n_samples, **scores})
        self.final = dict(scores)
        key = PRIMARY.name
        fid = scores.get(key)
        if n is not None:
            pass  # a cheaper intermediate point: on the curve, not a candidate for `best`
        elif (
            fid is not None
            and math.isfinite(fid)
            and (self.best is None or key not in self.best or fid < self.best[key])
        ):
            self.best = {**(self.best or {}), key: fid, "step": step}
        for name, spec in self._plugins().items():
            value = scores.get(name)
            if n is not None or value is None or not math.isfinite(value):
                continue
            old = (self.best or {}).get(name)
            better = old is None or (
                value > old["value"] if spec.higher_is_better else value < old["value"]
            )
            if better:
                self.best = {**(self.best or {}), name: {"value": value, "step": step}}
        logged = self.logged_names()
        log.info(
            "step %d: %s (%.1f s)",
            step, ", ".join(f"{k}={v:.4g}" for k, v in scores.items() if k in logged and v is not None), time.perf_counter() - t0,
        )  # fmt: skip
        if trainer.is_global_zero:
            metrics = {f"val/{k}": float(scores[k]) for k in logged if scores.get(k) is not None}
            # the running best: its last point is the run's best FID
            if self.best is not None and key in self.best:
                metrics[f"val/best_{key}"] = float(self.best[key])
            for lg in trainer.loggers:
                lg.log_metrics(metrics, step=step)
        return scores

    @contextmanager
    def _n_samples(self, n: int | None) -> Iterator[None]:
        """The evaluator scoring `n` samples for the block (None: its own n_samples)."""
        full = getattr(self.evaluator, "n_samples", None)
        if n is None or full is None:
            yield
            return
        self.evaluator.n_samples = n
        try:
            yield
        finally:
            self.evaluator.n_samples = full

    def _plugins(self) -> dict:
        """{name: MetricSpec} of the evaluator's plug-in metrics (eval.extra_metrics)."""
        specs = getattr(self.evaluator, "metric_specs", None) or {}
        return {n: s for n, s in specs.items() if n not in BUILTIN}

    def logged_names(self) -> tuple[str, ...]:
        """The val/<name> scalars this callback logs: the registry's, then the plug-ins'."""
        return (*LOGGED, *self._plugins())

    def declarations(self) -> dict[str, dict]:
        """metrics.json "metrics": {name: {"higher_is_better", "label"}} of every metric logged,
        so ganarena-compare and HParams can read a run without importing its plug-ins."""
        specs = {**BUILTIN, **self._plugins()}
        return {
            k: specs[k].declaration()
            for k in (self.final or {})
            if k in specs and specs[k].logged and k in self.logged_names()
        }

    def state_dict(self) -> dict[str, Any]:
        # `seconds` is not kept: it measures this session's evaluation time only.
        return {"history": self.history, "final": self.final, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.final = state_dict.get("final")
        self.best = state_dict.get("best")
