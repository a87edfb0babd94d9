"""Sample grids from the fixed latent batch (scatter plots for 2-D points): TensorBoard and samples/."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

SCATTER_POINTS = 1000  # generated points drawn in a scatter plot of 2-D data


class SampleGridCallback(L.Callback):
    """Every `every_n_steps` generator steps (and at the end), log G(fixed_z) as a grid."""

    def __init__(self, every_n_steps: int, out_dir: str | Path, nrow: int = 8) -> None:
        self.every_n_steps = every_n_steps
        self.out_dir = Path(out_dir)
        self.nrow = nrow
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
        scatter = getattr(getattr(trainer, "datamodule", None), "scatter_figure", None)
        if scatter is not None:  # 2-D points (dataset=gaussian_mixture): a scatter plot instead
            self._scatter(trainer, pl_module, scatter, step)
            return
        samples = pl_module.sample_fixed()
        if samples.dim() != 4:  # not images (e.g. 2-D toy data): nothing to draw as a grid
            return
        grid = make_grid(samples, nrow=self.nrow, normalize=True, value_range=(-1, 1))
        for lg in trainer.loggers:
            exp = getattr(lg, "experiment", None)
            if hasattr(exp, "add_image"):
                exp.add_image("samples", grid, step)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.out_dir / f"step_{step:06d}.png")

    def _scatter(self, trainer, pl_module, scatter, step: int) -> None:
        # The fixed batch (callbacks.samples.n, 64 by default) is too sparse to show 25 modes:
        # SCATTER_POINTS latents from a generator seeded alike at every call, so the plots stay
        # comparable across steps and the global RNG stream is untouched.
        gen = torch.Generator().manual_seed(pl_module.seed)
        points = pl_module.sample(max(SCATTER_POINTS, len(pl_module.fixed_z)), generator=gen)
        fig = scatter(points, title=f"step {step}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(self.out_dir / f"step_{step:06d}.png")
        for lg in trainer.loggers:
            exp = getattr(lg, "experiment", None)
            if hasattr(exp, "add_figure"):
                exp.add_figure("samples", fig, step, close=False)
