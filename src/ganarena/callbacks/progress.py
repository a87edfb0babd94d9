"""A progress bar over generator steps (Lightning's counts batches per epoch)."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class GANProgressBar(TQDMProgressBar):
    """One bar for the whole run: position = generator steps, total = max_steps."""

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
        self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(total=pl_module.max_steps)
        self.train_progress_bar.n = pl_module.g_step
        self._shown = pl_module.g_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        pass  # keep one bar across epochs

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.g_step
        if step != self._shown and (step % self.refresh_rate == 0 or step == pl_module.max_steps):
            self._shown = step
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            self.train_progress_bar.refresh()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        metrics.pop("g_step", None)
        return metrics
