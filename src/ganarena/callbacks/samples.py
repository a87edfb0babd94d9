"""Sample pictures during training: TensorBoard and <run>/samples/step_NNNNNN.png."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import save_image


class SampleGridCallback(L.Callback):
    """Every `every_n_steps` generator steps (and at the end), log the data's picture of the
    task's progress: `datamodule.preview(task, step)`, an image grid (C, H, W) in [0, 1] (for
    images: the task's fixed samples) or a matplotlib figure (2-D points: a scatter plot)."""

    def __init__(self, every_n_steps: int, out_dir: str | Path) -> None:
        self.every_n_steps = every_n_steps
        self.out_dir = Path(out_dir)
        self._last = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.g_step
        if step != self._last and step % self.every_n_steps == 0 and step > 0:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.g_step != self._last:
            self._log(trainer, pl_module)

    @rank_zero_only
    def _log(self, trainer, pl_module) -> None:
        self._last = step = pl_module.g_step
        picture = trainer.datamodule.preview(pl_module, step)
        path = self.out_dir / f"step_{step:06d}.png"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        experiments = [
            lg.experiment for lg in trainer.loggers if hasattr(lg.experiment, "add_image")
        ]
        if isinstance(picture, Tensor):
            save_image(picture, path)
            for exp in experiments:
                exp.add_image("samples", picture, step)
        else:  # a matplotlib figure
            picture.savefig(path)
            for exp in experiments:
                exp.add_figure("samples", picture, step, close=False)
