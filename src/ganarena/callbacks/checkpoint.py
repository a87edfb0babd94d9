"""Periodic checkpoints every N generator steps (Lightning's counter counts optimizer steps)."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that fires every `every_n_steps` *generator* steps of the task.

    Lightning's `every_n_train_steps` counts `global_step`, which advances on every optimizer
    step (Lightning #17958): n_critic + 1 per generator step for a GAN, more with lazy
    regularisation phases, four per step for a CycleGAN. The task's own `g_step` does not depend
    on the recipe. Top-k retention (by g_step, newest kept) and last.ckpt are ModelCheckpoint's.
    """

    def __init__(self, every_n_steps: int, **kwargs) -> None:
        super().__init__(every_n_train_steps=0, every_n_epochs=0, **kwargs)
        self.every_n_steps = every_n_steps
        self._saved_at = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.g_step
        if step == 0 or step == self._saved_at or step % self.every_n_steps:
            return
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._saved_at = step
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
