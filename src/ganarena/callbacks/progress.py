"""Progress over generator steps (Lightning's bar counts batches per epoch), in the form that suits
where stderr goes: a bar on a terminal, a plain line every few percent when stderr is a file, a
pipe or CI (a bar redraws itself with carriage returns: ~70 KB of them in a redirected default run).
Also the one filter that keeps Lightning's advertisements out of every run's log."""

from __future__ import annotations

import logging
import sys
import time

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

# Lightning logs these through rank_zero_info on every Trainer ("💡 Tip: ... litlogger", "...
# litmodels"): advertisements for its cloud products, not information about the run.
ADVERTISEMENT = ("💡 Tip:", "litlogger", "litmodels")


class _NoAdvertisements(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in ADVERTISEMENT)


def quiet_lightning_tips() -> None:
    """Drop Lightning's advertisement lines (idempotent; a filter on the loggers that emit them,
    so Lightning's own handler and Hydra's both never see them)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoAdvertisements) for f in logger.filters):
            logger.addFilter(_NoAdvertisements())


class GANProgressBar(TQDMProgressBar):
    """One bar for the whole run: position = generator steps, total = max_steps. With `plain`
    (default: when stderr is not a terminal) no bar: one line per `every_percent` % of the run,
    `train: step 300/6000 (5%) d_loss=1.234 g_loss=0.987 16.2 it/s eta 5m52s`."""

    def __init__(self, refresh_rate: int = 10, plain: bool | None = None, every_percent: float = 5):
        super().__init__(refresh_rate=refresh_rate)
        self.plain = (not _isatty(sys.stderr)) if plain is None else plain
        self.every_percent = every_percent

    def init_train_tqdm(self) -> Tqdm:
        # stderr, like the logs: stdout stays free for machine-readable output.
        return Tqdm(
            desc="train (generator steps)",
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def on_train_start(self, trainer, pl_module) -> None:
        self._shown = pl_module.g_step
        self._start = (time.perf_counter(), pl_module.g_step)
        self._last_bucket = self._bucket(pl_module.g_step, pl_module.max_steps)
        if self.plain:
            return
        self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(total=pl_module.max_steps)
        self.train_progress_bar.n = pl_module.g_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        pass  # keep one bar across epochs

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, total = pl_module.g_step, pl_module.max_steps
        if step == self._shown:
            return
        if self.plain:
            bucket = self._bucket(step, total)
            if bucket != self._last_bucket or step == total:
                self._last_bucket, self._shown = bucket, step
                if not self.is_disabled:
                    self._print_line(trainer, pl_module, step, total)
            return
        if step % self.refresh_rate == 0 or step == total:
            self._shown = step
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            self.train_progress_bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def on_train_end(self, trainer, pl_module) -> None:
        if not self.plain:
            super().on_train_end(trainer, pl_module)

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        metrics.pop("g_step", None)
        return metrics

    # -- plain lines ------------------------------------------------------------------------------

    def _bucket(self, step: int, total: int) -> int:
        return int(100 * step / max(total, 1) // self.every_percent)

    def _print_line(self, trainer, pl_module, step: int, total: int) -> None:
        t0, step0 = self._start
        elapsed = time.perf_counter() - t0
        rate = (step - step0) / elapsed if elapsed > 0 else 0.0
        parts = [f"train: step {step}/{total} ({100 * step / max(total, 1):.0f}%)"]
        for name, value in self.get_metrics(trainer, pl_module).items():
            parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
        parts.append(f"{rate:.3g} it/s")
        if rate > 0 and step < total:
            parts.append(f"eta {_duration((total - step) / rate)}")
        print(" ".join(parts), file=sys.stderr, flush=True)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )
