"""Scores for the 2-D Gaussian mixtures (dataset=gaussian_mixture), computed in the data's units.

The VEEGAN protocol (Srivastava et al. 2017), as PacGAN's code implements it (Lin et al. 2018,
synthetic_data_experiments/PacGAN/pacgan/extensions.py, MetricLogger): every generated point is
assigned to its nearest mode centre; it is *high quality* when it lies within 3 standard deviations
of that centre (Euclidean distance <= 3 std: the modes are isotropic); a mode is *covered* when at
least one high-quality point is assigned to it. Besides `modes_covered` and `high_quality` (the
fraction of high-quality points, 0..1) the scores hold `class_kl`, the reverse KL divergence
KL(mode histogram of the high-quality points || uniform) in nats (PacGAN's "reverse KL"; NaN when
no point is high quality), and `fid`: the Frechet distance between the generated and the reference
points themselves (2-D Gaussian fits, identity features). A conditional generator also gets
`class_acc`: the fraction of points whose nearest mode is the one they were generated for.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganarena.errors import ConfigError, DivergedError
from ganarena.metrics import registry as M
from ganarena.metrics.fid import frechet_distance, sample_settings

HQ_STDS = 3.0  # "within three standard deviations of the nearest mode" (VEEGAN, PacGAN)
MIN_HQ_PER_MODE = 1  # PacGAN's MetricLogger: a mode with any high-quality point is covered


def mixture_scores(points: Tensor, centres: Tensor, std: float) -> dict:
    """modes_covered, high_quality and class_kl of `points` (N, 2) against the mode `centres`."""
    points, centres = points.double(), centres.double()
    dist = torch.cdist(points, centres)
    nearest, mode = dist.min(dim=1)
    hq = nearest <= HQ_STDS * std
    counts = torch.bincount(mode[hq], minlength=len(centres)).double()
    n_hq = float(counts.sum())
    kl = math.nan
    if n_hq > 0:
        p = counts / n_hq
        nz = p > 0
        kl = float((p[nz] * (p[nz] * len(centres)).log()).sum())
    return {
        M.MODES_COVERED: int((counts >= MIN_HQ_PER_MODE).sum()),
        M.HIGH_QUALITY: n_hq / max(len(points), 1),
        M.CLASS_KL: kl,
    }


class MixtureEvaluator:
    """Scores generators of a GaussianMixtureDataModule; the same interface as `Evaluator`
    (score_module, score_images, settings, to, n_samples, seed, reference_cached)."""

    resizable = True  # n_samples is read at scoring time (eval.n_samples_during)

    def __init__(self, eval_cfg, datamodule):
        M.refuse_plugins(eval_cfg.get("extra_metrics"), "2-D mixture")
        self.datamodule = datamodule
        self.n_samples, self.seed, self.batch_size = sample_settings(
            eval_cfg, "eval.n_samples=10000 (VEEGAN and PacGAN score 2,500 points)"
        )
        self.device = torch.device("cpu")
        self.reference_cached = False  # nothing to cache: the reference is drawn from a seed
        self.real, _ = datamodule.reference_points()
        self._settings = {
            "backbone": "mixture",
            "dataset": datamodule.resolved,
            "dataset_fingerprint": datamodule.fingerprint(),
            "layout": datamodule.layout,
            "n_modes": datamodule.n_modes,
            "std": datamodule.std,
            **({"radius": datamodule.radius} if datamodule.layout == "ring" else {}),
            "scale": datamodule.scale,
            "n_real": len(self.real),
            "n_fake": self.n_samples,
            "real_split": "test",
            "seed": self.seed,
            "image_size": 1,
            "feature_dim": 2,
            "high_quality_stds": HQ_STDS,
            "min_hq_per_mode": MIN_HQ_PER_MODE,
        }

    @property
    def settings(self) -> dict:
        """The settings that produced the scores (the "eval" block of metrics.json)."""
        return dict(self._settings)

    def to(self, device) -> MixtureEvaluator:
        self.device = torch.device(device)  # scoring itself runs on the CPU (a few ms)
        return self

    def score_points(self, points: Tensor) -> dict:
        """Scores of `points` (N, 2) in the ORIGINAL units of the mixture."""
        if not torch.isfinite(points).all():
            raise DivergedError(
                "The generated points contain NaN or inf, so they cannot be scored: the generator "
                "has diverged. Lower the learning rates or change the loss, and resume from an "
                "earlier checkpoint."
            )
        if len(points) < 2:
            raise ConfigError(
                f"Scoring needs at least 2 generated points, got {len(points)}. Raise eval.n_samples."
            )
        dm = self.datamodule
        scores = {M.FID: frechet_distance(self.real, points.double())}
        scores.update(mixture_scores(points, dm.centres, dm.std))
        self._settings["n_fake"] = len(points)
        return scores

    def score_images(self, fake: Tensor) -> dict:
        """Scores of generator output `fake` ((N, 2, 1, 1) or (N, 2), in [-1, 1] model units)."""
        return self.score_points(self.datamodule.unscale(fake.detach().cpu()))

    def score_module(self, task, rank: int = 0, world_size: int = 1) -> dict:
        """Scores of eval.n_samples points from `task.sample` (the EMA generator when enabled),
        items 0..n-1 of the sample stream of eval.seed: the same task scores identically.
        Under DDP every rank scores all the points itself (a few ms): nothing to gather."""
        fake, labels = task.sample(self.n_samples, seed=self.seed)
        scores = self.score_images(fake)
        if labels is not None:  # conditional: the class-balanced labels 0, 1, ..., C-1, 0, ...
            mode = torch.cdist(self.datamodule.unscale(fake), self.datamodule.centres).argmin(dim=1)
            scores[M.CLASS_ACC] = float((mode == labels).double().mean())
        return scores
