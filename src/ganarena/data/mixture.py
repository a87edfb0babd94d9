"""2-D mixtures of Gaussians (the VEEGAN / PacGAN mode-collapse benchmark) as a datamodule.

Ring: `n_modes` (8) isotropic Gaussians on a circle of radius `radius` (2); grid: `n_modes` (25)
on a square grid with spacing 2 centred on the origin ({-4, -2, 0, 2, 4}^2). Points are served as
(N, 2, 1, 1) tensors ("2-channel 1x1 images") so the MLP nets run unchanged with channels=2,
image_size=1, and divided by `scale` (by default so that they lie inside the generator's Tanh
range [-1, 1]; 1 serves them in their own units, for a generator with a linear output as
PacGAN's); `unscale` maps generator output back to the original units, in which the scores are
computed (ganarena.metrics.mixture). PacGAN's own layouts (Lin et al. 2018, 2DRing/2DGrid
config.py) are radius 1 with std 0.01 (the default ring's shape at half the size) and the default
grid with std 0.05, both unscaled: `layout=ring radius=1 std=0.01 scale=1`, `layout=grid scale=1`.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from ganarena.data.base import ImageDataModule, _check_int, subset_indices
from ganarena.errors import ConfigError, DataError

LAYOUTS = ("ring", "grid")
# Standard per-coordinate standard deviations: ring 0.02 at radius 2 (VEEGAN, Srivastava et al.
# 2017; PacGAN's code uses the same ratio, std 0.01 at radius 1), grid 0.05 with spacing 2
# (PacGAN, Lin et al. 2018, synthetic_data_experiments/2DGrid config).
DEFAULT_STD = {"ring": 0.02, "grid": 0.05}
DEFAULT_MODES = {"ring": 8, "grid": 25}
PREVIEW_POINTS = 1000  # generated points drawn in a sample scatter plot
RADIUS = 2.0  # default ring radius
SPACING = 2.0  # grid spacing
# Data are divided by MARGIN x (outermost centre coordinate + 3 std): every mode and nearly all of
# its mass sit well inside (-1, 1), where Tanh can still reach them with moderate pre-activations.
MARGIN = 1.25


def mixture_centres(layout: str, n_modes: int, radius: float = RADIUS) -> Tensor:
    """(n_modes, 2) float64 mode centres in the original units (`radius`: the ring's)."""
    if layout == "ring":
        angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
        return radius * torch.stack([angle.cos(), angle.sin()], dim=1)
    side = math.isqrt(n_modes)
    ticks = SPACING * (torch.arange(side, dtype=torch.float64) - (side - 1) / 2)
    return torch.cartesian_prod(ticks, ticks)


def _positive(value) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, Real)
        and math.isfinite(value)
        and value > 0
    )


def _fix(key: str, value, rule: str, example: str) -> ConfigError:
    return ConfigError(
        f"dataset.{key} {rule}, got {value!r}. Fix it in conf/dataset/gaussian_mixture.yaml or on "
        f"the command line, e.g. dataset.{key}={example}."
    )


class GaussianMixtureDataModule(ImageDataModule):
    """Points of a 2-D Gaussian mixture, drawn once from `seed`: `n_train` for training and
    `n_eval` (another stream of the same seed) as the reference set. Labels are mode indices."""

    scored_as = "points"  # modes and high-quality samples in the data's units (metrics.mixture)

    def __init__(
        self,
        name: str = "gaussian_mixture",
        layout: str = "ring",
        std: float | None = None,
        n_modes: int | None = None,
        n_train: int = 100_000,
        n_eval: int = 10_000,
        image_size: int = 1,
        channels: int = 2,
        batch_size: int = 64,
        num_workers: int = 0,
        limit: int | None = None,
        seed: int = 0,
        radius: float = RADIUS,
        scale: float | None = None,
    ):
        # The base class checks the shared settings; it only knows 1- and 3-channel images.
        super().__init__(name, 1, 1, batch_size, num_workers, limit, seed)
        if layout not in LAYOUTS:
            raise _fix("layout", layout, "must be 'ring' (8 modes) or 'grid' (25 modes)", "grid")
        if image_size != 1 or channels != 2:
            raise ConfigError(
                f"dataset=gaussian_mixture serves 2-D points as 2-channel 1x1 images, so it needs "
                f"dataset.image_size=1 and dataset.channels=2; got {image_size!r} and {channels!r}. "
                "Remove those overrides."
            )
        n_modes = DEFAULT_MODES[layout] if n_modes is None else n_modes
        _check_int("n_modes", n_modes, 1, "gaussian_mixture")
        if layout == "grid" and math.isqrt(n_modes) ** 2 != n_modes:
            raise _fix("n_modes", n_modes, "must be a square number for layout=grid", "25")
        std = DEFAULT_STD[layout] if std is None else std
        if not _positive(std):
            raise _fix(
                "std", std, "must be a positive number (null = the layout's standard)", "0.05"
            )
        if not _positive(radius):
            from ganarena.run.defaults import example

            shown = example("dataset.radius", 2.0, "gaussian_mixture")
            raise _fix("radius", radius, "must be a positive number (the ring's radius)", shown)
        if scale is not None and not _positive(scale):
            raise _fix("scale", scale, "must be a positive number or null (fit into [-1, 1])", "1")
        centres = mixture_centres(layout, n_modes, float(radius))
        gap = (
            float(torch.cdist(centres, centres).add(torch.eye(n_modes) * 1e9).min())
            if n_modes > 1
            else math.inf
        )
        if 6 * std >= gap:  # 3-std disks would overlap: "nearest mode within 3 std" is ambiguous
            raise _fix(
                "std", std, f"must be below 1/6 of the distance between modes ({gap:.3g})", "0.05"
            )
        _check_int("n_train", n_train, 1, "gaussian_mixture")
        _check_int("n_eval", n_eval, 2, "gaussian_mixture")
        self.channels = 2
        self.layout, self.std, self.n_modes = layout, float(std), n_modes
        self.radius = float(radius)
        self.n_train, self.n_eval = n_train, n_eval
        self.centres = centres
        # the plot's extent; by default also the divisor that fits the points into [-1, 1]
        self.extent = MARGIN * (float(centres.abs().max()) + 3 * self.std)
        self.scale = self.extent if scale is None else float(scale)
        self.resolved = f"gaussian_{layout}"
        self.num_classes = n_modes

    def draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n points (n, 2) float64 in the original units and their mode indices (uniform modes)."""
        labels = torch.randint(self.n_modes, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.centres[labels] + self.std * noise, labels

    def to_images(self, points: Tensor) -> Tensor:
        """Points (N, 2) in the original units -> float32 (N, 2, 1, 1) in model units."""
        return (points / self.scale).float().view(-1, 2, 1, 1)

    def unscale(self, x: Tensor) -> Tensor:
        """Model output (N, 2, 1, 1) or (N, 2) -> float64 points (N, 2) in the original units."""
        if x.ndim not in (2, 4) or x.shape[1] != 2 or x[0].numel() != 2:
            raise DataError(
                f"Expected 2-D points of shape (N, 2) or (N, 2, 1, 1), got {tuple(x.shape)}: "
                "dataset=gaussian_mixture is scored on generator output with channels=2, image_size=1."
            )
        return x.reshape(-1, 2).double() * self.scale

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        gen = torch.Generator().manual_seed(2 * self.seed)
        points, labels = self.draw(self.n_train, gen)
        idx = subset_indices(len(points), self.limit, self.seed)
        self.images, self.labels = self.to_images(points[idx]), labels[idx].clone()
        self._require_full_batch("raise dataset.n_train or dataset.limit")
        ref_points, ref_labels = self.draw(
            self.n_eval, torch.Generator().manual_seed(2 * self.seed + 1)
        )
        self._reference = (self.to_images(ref_points), ref_labels, "test")

    def reference_points(self) -> tuple[Tensor, Tensor]:
        """The reference set in the original units (float64 (n_eval, 2)) and its mode indices."""
        images, labels, _ = self.reference()
        return self.unscale(images), labels

    def preview(self, task, step: int):
        """A scatter plot of PREVIEW_POINTS samples over the real points. The fixed grid batch
        (64) is too sparse to show 25 modes; the points are drawn from the task's seed at every
        call, so the plots stay comparable across steps and the global RNG stream is untouched."""
        points, _ = task.sample(PREVIEW_POINTS, seed=task.seed)
        return self.scatter_figure(points, title=f"step {step}")

    def preview_real(self, task) -> None:
        """No separate real picture: every scatter plot shows the real points already."""
        return None

    def scatter_figure(self, fake: Tensor, title: str = ""):
        """A matplotlib Figure: reference points (light grey), `fake` model output on top, mode
        centres as crosses, in the original units."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        real, _ = self.reference_points()
        real = real[:2000].numpy()
        pts = self.unscale(fake.detach().cpu()).numpy()
        fig = Figure(figsize=(4, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(111)
        ax.scatter(real[:, 0], real[:, 1], s=4, c="0.8", linewidths=0, label="real")
        ax.scatter(
            pts[:, 0], pts[:, 1], s=6, c="tab:blue", alpha=0.6, linewidths=0, label="generated"
        )
        c = self.centres.numpy()
        ax.scatter(c[:, 0], c[:, 1], s=30, c="tab:red", marker="x", linewidths=1, label="modes")
        lim = self.extent
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=7, frameon=False
        )
        fig.tight_layout()
        return fig
