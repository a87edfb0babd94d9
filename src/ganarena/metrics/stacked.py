"""The Stacked MNIST score (dataset=stacked_mnist): 1,000 modes, counted as the papers count them.

VEEGAN (Srivastava et al. 2017, sec. 5.2) and PacGAN (Lin et al. 2018, Tables 2 and 3; code:
stacked_MNIST_experiments/*/model.py, log_metrics) classify each of the three channels of a
generated image with a digit classifier trained on MNIST; the digit triple is its mode. Over
eval.n_samples samples (26,000 in VEEGAN/PacGAN Table 2, 25,600 in Table 3):

- `modes_covered`: the number of distinct triples among the samples (of 1,000);
- `mode_kl`: KL(p_gen || uniform over the 1,000 triples) in nats, p_gen the samples' triple
  histogram (ln 1000 = 6.91 for a generator with one triple; ~0.02 for 26,000 real images);
- `digit_confidence`: the classifier's mean top probability on the worst of the three channels
  (`digit_confidence_per_channel` gives all three), so a channel it cannot read is visible;
- `fid`: the Frechet distance between generated and real stacked images in the classifier's
  features of the three channels, concatenated (3 x 128 dimensions).

The digit classifier is ganarena's domain classifier of the single-channel digits
(metrics.backbones, cached under its own key: the same file dataset=<digits> trains and reuses).
The real reference (dataset.n_reference stacked images) is scored once and cached: its modes and
KL are the floor a generator as good as the data would reach (`real_floor` in the settings).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from ganarena.errors import ConfigError, DataError
from ganarena.metrics import registry as M
from ganarena.metrics.fid import fid_metric, sample_settings
from ganarena.run.files import cache_lock, save_torch, to_uint8

log = logging.getLogger(__name__)

MODES = 1000
CHANNELS = 3
REFERENCE_VERSION = 1  # of the cached real-side statistics below


def stacked_mode_scores(digits: Tensor, confidence: Tensor | None = None) -> dict:
    """modes_covered and mode_kl of digit triples (N, 3) in 0..9 (and, given the classifier's
    top probabilities (N, 3), digit_confidence and its per-channel values)."""
    if digits.ndim != 2 or digits.shape[1] != CHANNELS or len(digits) == 0:
        raise DataError(
            f"Expected digit triples of shape (N, 3), N >= 1, got {tuple(digits.shape)}."
        )
    codes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    p = torch.bincount(codes, minlength=MODES).double() / len(codes)
    nz = p > 0
    scores = {
        M.MODES_COVERED: int(nz.sum()),
        M.MODE_KL: float((p[nz] * (p[nz] * MODES).log()).sum()),
    }
    if confidence is not None:
        per_channel = confidence.double().mean(dim=0)
        scores[M.DIGIT_CONFIDENCE] = float(per_channel.min())
        scores[M.DIGIT_CONFIDENCE_PER_CHANNEL] = [float(v) for v in per_channel]
    return scores


class StackedMNISTEvaluator:
    """Scores generators of a StackedMNISTDataModule; the interface of `Evaluator` (score_module,
    score_images, settings, to, n_samples, seed, reference_cached). `backbone` (tests) replaces
    the trained digit classifier: a module mapping uint8 (B, 1, H, W) to (features, logits over
    the 10 digits), with `name`, `feature_dim`, `info` and `cache_id` (None: nothing cached)."""

    resizable = True  # n_samples is read at scoring time (eval.n_samples_during)

    def __init__(self, eval_cfg, datamodule, cache_dir, device=None, backbone=None):
        M.refuse_plugins(eval_cfg.get("extra_metrics"), "Stacked MNIST")
        if backbone is None and eval_cfg.get("backbone") != "domain":
            raise ConfigError(
                f"dataset=stacked_mnist is scored as the papers score it, by a digit classifier "
                f"on each channel (eval=domain), not by eval.backbone={eval_cfg.get('backbone')}. "
                "Use eval=domain (or eval=none)."
            )
        from ganarena.metrics.evaluator import default_device

        self.n_samples, self.seed, self.batch_size = sample_settings(
            eval_cfg, "eval.n_samples=26000 (VEEGAN and PacGAN Table 2 score 26,000 samples)"
        )
        datamodule.setup("fit")
        self.datamodule = datamodule
        if backbone is None:
            from ganarena.metrics.backbones import build_domain_backbone

            backbone = build_domain_backbone(eval_cfg, datamodule.source, cache_dir)
        self.backbone = backbone
        self.device = torch.device(device or default_device())
        self.backbone.to(self.device)
        self.reference_cached = False
        self.reference = self._reference(cache_dir)
        self._settings = self._describe()

    # -- the real side ---------------------------------------------------------------------------
    def _reference(self, cache_dir) -> dict:
        """FID statistics and the floor scores of the real stacked reference, cached by the
        reference's fingerprint and the classifier's weights."""
        real = self.datamodule.real("reference")
        cache_id = self.backbone.cache_id
        if cache_dir is None or cache_id is None:
            return self._real_statistics(real)
        path = Path(cache_dir) / "reference" / (
            f"{real.fingerprint[:16]}-stacked-{cache_id}-n{len(real)}-v{REFERENCE_VERSION}.pt"
        )  # fmt: skip
        with cache_lock(path):
            if path.is_file():
                try:
                    ref = torch.load(path, map_location="cpu", weights_only=True)
                    self.reference_cached = True
                    return ref
                except Exception as e:  # noqa: BLE001 - an unreadable entry is recomputed
                    log.warning("stacked MNIST reference %s is unusable (%s); recomputing", path, e)
            log.info("scoring the %d real stacked MNIST images (once, then cached)", len(real))
            ref = self._real_statistics(real)
            save_torch(ref, path)
        return ref

    def _real_statistics(self, real) -> dict:
        fid = fid_metric(CHANNELS * self.backbone.feature_dim)
        digits, confidence = [], []
        for images, _ in real.batches(self.batch_size):
            f, d, c = self.read(images)
            fid.update(f.double(), real=True)
            digits.append(d)
            confidence.append(c)
        floor = stacked_mode_scores(torch.cat(digits), torch.cat(confidence))
        return {
            "fid_sum": fid.real_features_sum.clone(),
            "fid_cov_sum": fid.real_features_cov_sum.clone(),
            "n": int(fid.real_features_num_samples),
            "floor": {k: floor[k] for k in (M.MODES_COVERED, M.MODE_KL, M.DIGIT_CONFIDENCE)},
            "split": real.split,
        }

    def _describe(self) -> dict:
        dm, ref = self.datamodule, self.reference
        return {
            "backbone": self.backbone.name,
            "scored_as": "stacked_digits: the digit classifier on each channel",
            "dataset": dm.resolved,
            "dataset_fingerprint": dm.fingerprint(),
            "modes": MODES,
            "real_classes": ref["floor"][M.MODES_COVERED],  # the triples the real data shows
            "n_real": ref["n"],
            "n_fake": self.n_samples,
            "real_split": ref["split"],
            "real_floor": dict(ref["floor"]),
            "seed": self.seed,
            "image_size": dm.image_size,
            "feature_dim": CHANNELS * self.backbone.feature_dim,
            **self.backbone.info,
        }

    # -- scoring ---------------------------------------------------------------------------------
    @torch.no_grad()
    def read(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(features (N, 3F), digits (N, 3), top probabilities (N, 3)) of stacked images
        (N, 3, H, W) in [-1, 1]: every channel classified as a single-channel digit."""
        if images.ndim != 4 or images.shape[1] != CHANNELS:
            raise DataError(
                f"Stacked MNIST is scored on images of shape (N, 3, H, W), got {tuple(images.shape)}."
            )
        n = len(images)
        x = to_uint8(images).reshape(n * CHANNELS, 1, *images.shape[-2:]).to(self.device)
        with torch.autocast(self.device.type, enabled=False):
            f, logits = self.backbone(x)
        top, digits = logits.float().softmax(dim=1).max(dim=1)
        return (
            f.float().cpu().reshape(n, -1),
            digits.cpu().view(n, CHANNELS),
            top.cpu().view(n, CHANNELS),
        )

    def _score(self, batches: Iterable[Tensor]) -> dict:
        fid = fid_metric(CHANNELS * self.backbone.feature_dim)
        fid.real_features_sum = self.reference["fid_sum"].clone()
        fid.real_features_cov_sum = self.reference["fid_cov_sum"].clone()
        fid.real_features_num_samples = torch.tensor(self.reference["n"])
        digits, confidence = [], []
        for images in batches:
            f, d, c = self.read(images)
            fid.update(f.double(), real=False)
            digits.append(d)
            confidence.append(c)
        digits = torch.cat(digits)
        scores = {M.FID: float(fid.compute()) if len(digits) >= 2 else math.nan}
        scores.update(stacked_mode_scores(digits, torch.cat(confidence)))
        self._settings["n_fake"] = len(digits)
        return scores

    def score_images(self, fake: Tensor) -> dict:
        """Scores of generated images (N, 3, H, W) in [-1, 1]."""
        bs = self.batch_size
        return self._score(fake[i : i + bs].detach().cpu() for i in range(0, len(fake), bs))

    def score_module(self, task, rank: int = 0, world_size: int = 1) -> dict:
        """Scores of eval.n_samples images from `task.sample` (the EMA generator when enabled),
        items 0..n-1 of the sample stream of eval.seed: the same task scores identically. Under
        DDP every rank scores all the samples itself (one classifier pass per sample)."""
        if task.num_classes is not None:
            raise ConfigError(
                "dataset=stacked_mnist scores an unconditional generator (its modes are the digit "
                "triples it finds by itself); this one is class-conditional. Train with "
                "model.conditional=false."
            )
        n, bs = self.n_samples, self.batch_size
        return self._score(
            task.sample(min(bs, n - i), seed=self.seed, start=i)[0] for i in range(0, n, bs)
        )

    @property
    def settings(self) -> dict:
        """The settings that produced the scores (the "eval" block of metrics.json)."""
        return dict(self._settings)

    def to(self, device) -> StackedMNISTEvaluator:
        self.device = torch.device(device)
        self.backbone.to(self.device)
        return self
