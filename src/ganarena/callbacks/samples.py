"""Sample pictures during training: TensorBoard and <run>/samples/step_NNNNNN.png."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import save_image

from ganarena.report.loggers import log_image

SAMPLES_TAG = "val/samples"  # in the val/ group, beside the scores of the same steps
REAL_TAG = "val/real"


class SampleGridCallback(L.Callback):
    """Every `every_n_steps` generator steps, at every evaluation step (`eval_every_n_steps`)
    and at the end, log the data's picture of the task's progress: `datamodule.preview(task,
    step)`, an image grid (C, H, W) in [0, 1] (for images: the task's fixed samples) or a
    matplotlib figure (2-D points: a scatter plot). At the start of a run, once, the data's real
    images laid out alike (`datamodule.preview_real(task)`, where the data has one)."""

    def __init__(
        self, every_n_steps: int, out_dir: str | Path, eval_every_n_steps: int = 0
    ) -> None:
        self.every_n_steps = every_n_steps
        self.eval_every_n_steps = eval_every_n_steps or 0
        self.out_dir = Path(out_dir)
        self._last = -1

    def _due(self, step: int) -> bool:
        return step > 0 and any(
            n and step % n == 0 for n in (self.every_n_steps, self.eval_every_n_steps)
        )

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.g_step == 0:  # a resumed run logged it when it started
            self._log_real(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.g_step
        if step != self._last and self._due(step):
            self._log(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.g_step != self._last:
            self._log(trainer, pl_module)

    @rank_zero_only
    def _log_real(self, trainer, pl_module) -> None:
        grid = trainer.datamodule.preview_real(pl_module)
        if grid is not None:
            log_image(trainer.loggers, REAL_TAG, grid, pl_module.g_step)

    @rank_zero_only
    def _log(self, trainer, pl_module) -> None:
        self._last = step = pl_module.g_step
        picture = trainer.datamodule.preview(pl_module, step)
        path = self.out_dir / f"step_{step:06d}.png"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(picture, Tensor):
            save_image(picture, path)
        else:  # a matplotlib figure
            picture.savefig(path)
        log_image(trainer.loggers, SAMPLES_TAG, picture, step)
