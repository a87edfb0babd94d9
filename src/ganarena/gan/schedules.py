"""Cosine ramps of a training setting over generator steps, as R3GAN schedules its gamma, learning
rate and Adam beta2 (Huang et al. 2024, brownvc/R3GAN training/training_loop.py,
`cosine_decay_with_warmup`; presets in train.py, e.g. CIFAR-10: gamma 0.05 -> 0.005, lr 2e-4 ->
5e-5, beta2 0.9 -> 0.99, all over the same horizon).

A ramp is a pure function of the generator-step counter, which checkpoints keep: a resumed run
reads the same value at the same step as an uninterrupted one (tests/test_modern_recipes.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ganarena.errors import ConfigError


def cosine_ramp(
    start: float, end: float, steps: int, warmup: int = 0, warmup_start: float = 0.0
) -> Callable[[int], float]:
    """value(t): `start` at step `warmup`, `end` at step `steps` along half a cosine,
    start + (end - start) * (1 - cos(pi * (t - warmup) / (steps - warmup))) / 2, and `end` after;
    over the first `warmup` steps a straight line from `warmup_start` up to `start` (R3GAN's
    warmup_value / warmup_nimg; its presets use none)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(
            f"A schedule's horizon must be a positive number of steps, got {steps!r}."
        )
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < steps:
        raise ConfigError(
            f"A schedule's warm-up must be an integer number of steps >= 0 and below its horizon "
            f"({steps}), got {warmup!r}."
        )
    start, end, warmup_start = float(start), float(end), float(warmup_start)

    def value(t: int) -> float:
        if t >= steps:
            return end
        if t < warmup:
            return warmup_start + (start - warmup_start) * t / warmup
        done = (1.0 - math.cos(math.pi * (t - warmup) / (steps - warmup))) / 2
        return start + (end - start) * done

    return value


@dataclass(frozen=True)
class Schedule:
    """The GAN task's `schedule` node: the horizon `steps` of every ramp (the penalties' weight
    schedules too), and R3GAN's optimizer ramps: both learning rates from their configured value
    to `lr_end_factor` x it (after `lr_warmup` steps of linear warm-up from 0), and Adam's beta2
    from its configured value to `beta2_end`. None: constant."""

    steps: int | None = None
    lr_end_factor: float | None = None
    beta2_end: float | None = None
    lr_warmup: int = 0

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any] | None, max_steps: int | None, decay_start: float | None
    ) -> Schedule:
        cfg = dict(cfg or {})
        unknown = set(cfg) - {"steps", "lr_end_factor", "beta2_end", "lr_warmup"}
        if unknown:
            raise ConfigError(
                f"task.schedule has no key(s) {sorted(unknown)}: it takes steps, lr_end_factor, "
                "beta2_end and lr_warmup (conf/task/gan.yaml)."
            )
        steps = cfg.get("steps")
        out = cls(
            steps=max_steps if steps is None else steps,
            lr_end_factor=_number(cfg, "lr_end_factor", 0.0, None),
            beta2_end=_number(cfg, "beta2_end", 0.0, 1.0),
            lr_warmup=int(cfg.get("lr_warmup") or 0),
        )
        if out.lr_end_factor is not None and decay_start is not None:
            raise ConfigError(
                f"task.decay_start={decay_start} (a linear decay) and task.schedule.lr_end_factor="
                f"{out.lr_end_factor} (R3GAN's cosine ramp) both schedule the learning rates: "
                "choose one (task.decay_start=null or task.schedule.lr_end_factor=null)."
            )
        if out.lr_warmup and out.lr_end_factor is None:
            raise ConfigError(
                "task.schedule.lr_warmup ramps the learning rates up before their cosine schedule: "
                "set task.schedule.lr_end_factor too (1.0 keeps the rate after the warm-up)."
            )
        if out.optimizers:
            out.ramp(1.0, 1.0)  # checks the horizon and the warm-up now, not at the first step
        return out

    @property
    def optimizers(self) -> bool:
        return self.lr_end_factor is not None or self.beta2_end is not None

    def ramp(self, start: float, end: float, warmup: int = 0) -> Callable[[int], float]:
        if self.steps is None:
            raise ConfigError(
                "A schedule needs a horizon: set task.schedule.steps (generator steps) or "
                "trainer.max_steps."
            )
        return cosine_ramp(start, end, self.steps, warmup)

    def of(self, start: float, end: float | None) -> Callable[[int], float] | None:
        """The ramp of a weight from `start` to `end` (None: constant, no ramp)."""
        return None if end is None else self.ramp(start, end)

    def lr_factor(self, t: int) -> float:
        """The learning rates' multiplier at generator step t (1 without a schedule)."""
        if self.lr_end_factor is None:
            return 1.0
        return self.ramp(1.0, self.lr_end_factor, self.lr_warmup)(t)

    def beta2(self, start: float, t: int) -> float:
        return start if self.beta2_end is None else self.ramp(start, self.beta2_end)(t)

    def summary(self) -> dict[str, Any]:
        """The ramps that are on, for metrics.json "config"."""
        on = {"lr_end_factor": self.lr_end_factor, "beta2_end": self.beta2_end}
        return {k: v for k, v in on.items() if v is not None}


def _number(cfg: Mapping[str, Any], key: str, low: float, high: float | None) -> float | None:
    value = cfg.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (high is not None and value >= high):
        rng = f">= {low}" + ("" if high is None else f" and < {high}")
        raise ConfigError(
            f"task.schedule.{key} must be null or a number {rng}, got {value!r}; e.g. "
            "task.schedule.lr_end_factor=0.25 task.schedule.beta2_end=0.99 (R3GAN)."
        )
    return float(value)
