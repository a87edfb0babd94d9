"""Scores of an image-to-image translation task (kind "translation", e.g. task=cyclegan): is the
translation good?

For each direction ("ab": A -> B, "ba": B -> A) a fixed, seeded set of eval.n_samples source
images (capped at the size of the source domain's reference set) is translated by
`task.translate(x, direction)` and scored with the image Evaluator of the TARGET domain (its
reference statistics and, for eval.backbone=domain, its classifier):

  fid_ab, kid_ab       FID / KID of G(A) against real B (fid_ba, kid_ba: F(B) against real A)
  label_acc_ab         label preservation: the share of translated images that the target
                       domain's classifier assigns the source image's label (labelled domains
                       with a classifier backbone only)
  cycle_l1_a           mean |F(G(a)) - a| over pixels in [-1, 1] (cycle_l1_b: |G(F(b)) - b|)
  truth_l1_ab          mean |G(a) - truth_ab(a)| where the true mapping is known (truth_l1_ba alike)
  fid, kid             the means of both directions (what sweeps, `optimized_metric: final/fid`
                       and ganarena-compare read)

L1 distances are mean absolute pixel differences in [-1, 1] units: 0 is exact, 2 is black for
white everywhere.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ganarena.metrics import registry as M
from ganarena.metrics.fid import sample_settings

log = logging.getLogger(__name__)

DIRECTIONS = {"ab": ("a", "b"), "ba": ("b", "a")}  # direction -> (source, target) domain


def source_set(
    reference: tuple[Tensor, Tensor | None, str], n: int, seed: int
) -> tuple[Tensor, Tensor | None]:
    """A seeded subset of n images (and their labels) of a reference set, in a fixed order; all of
    it when it holds n or fewer."""
    images, labels, _ = reference
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[idx], None if labels is None else labels[idx]


class TranslationEvaluator:
    """Scores translation tasks on an UnpairedDataModule; the interface of `Evaluator`
    (score_module, settings, to, n_samples, seed, reference_cached). See the module docstring."""

    def __init__(self, eval_cfg, datamodule, cache_dir: str, device=None):
        from ganarena.metrics.evaluator import build_image_evaluator

        M.refuse_plugins(eval_cfg.get("extra_metrics"), "translation")
        datamodule.setup("fit")
        self.n_samples, self.seed, self.batch_size = sample_settings(
            eval_cfg, "eval.n_samples=1000"
        )
        domains = {"a": datamodule.a, "b": datamodule.b}
        # The image evaluator of each TARGET domain: its reference, its classifier.
        self.targets = {
            d: build_image_evaluator(eval_cfg, domains[dst], cache_dir, device)
            for d, (_, dst) in DIRECTIONS.items()
        }
        self.sources: dict[str, tuple[Tensor, Tensor | None]] = {}
        self.splits: dict[str, str] = {}
        for d, (src, _) in DIRECTIONS.items():
            reference = domains[src].reference()
            self.sources[d] = source_set(reference, self.n_samples, self.seed)
            self.splits[d] = reference[2]
        self.truth = {"ab": datamodule.truth_ab, "ba": datamodule.truth_ba}
        self.reference_cached = all(ev.reference_cached for ev in self.targets.values())
        self.device = torch.device("cpu")
        self._info = {
            "dataset": datamodule.resolved,
            "dataset_fingerprint": datamodule.fingerprint(),
        }

    @property
    def settings(self) -> dict[str, Any]:
        """The settings that produced the scores (the "eval" block of metrics.json): the shared
        ones at the top, each direction's image-evaluator settings under "ab" / "ba"."""
        ab, ba = (self.targets[d].settings for d in ("ab", "ba"))
        out: dict[str, Any] = {
            "backbone": "translation",
            "features": ab["backbone"],
            "seed": self.seed,
            "n_fake_ab": len(self.sources["ab"][0]),
            "n_fake_ba": len(self.sources["ba"][0]),
            "source_split_a": self.splits["ab"],
            "source_split_b": self.splits["ba"],
            "truth_known": self.truth["ab"] is not None,
            "l1_units": "mean absolute pixel difference, images in [-1, 1]",
            **self._info,
        }
        for d, s in (("ab", ab), ("ba", ba)):
            for key in ("real_floor_fid", "classifier_accuracy"):
                if s.get(key) is not None:
                    out[f"{key}_{d}"] = s[key]
        out.update(ab=ab, ba=ba)
        return out

    def to(self, device) -> TranslationEvaluator:
        self.device = torch.device(device)
        for ev in self.targets.values():
            ev.to(self.device)
        return self

    def score_module(self, task, rank: int = 0, world_size: int = 1) -> dict[str, float]:
        """The flat scores of `task` (anything with `translate(x, direction)` returning images in
        [-1, 1] on the CPU). Every DDP rank scores everything itself (the same numbers)."""
        device = torch.device(task.device)
        if device != self.device:
            self.to(device)
        scores: dict[str, float] = {}
        for d, (src, _) in DIRECTIONS.items():
            scores.update(self._direction(task, d, src))
        for m in (M.FID, M.KID):  # the means of both directions
            scores[m] = sum(scores[f"{m}_{d}"] for d in DIRECTIONS) / len(DIRECTIONS)
        return scores

    def _direction(self, task, d: str, src: str) -> dict[str, float]:
        images, labels = self.sources[d]
        back = "ba" if d == "ab" else "ab"
        truth = self.truth[d]
        ev = self.targets[d]
        sums = {"cycle": 0.0, "truth": 0.0}
        bs = self.batch_size

        def batches():
            for i in range(0, len(images), bs):
                x = images[i : i + bs]
                y = task.translate(x, d)
                sums["cycle"] += float((task.translate(y, back) - x).abs().double().sum())
                if truth is not None:
                    sums["truth"] += float((y - truth(x)).abs().double().sum())
                yield ev.features(y)

        scored = ev.score_features(batches(), labels)
        out = {
            f"{M.FID}_{d}": scored[M.FID],
            f"{M.KID}_{d}": scored[M.KID],
            f"{M.CYCLE_L1}_{src}": sums["cycle"] / images.numel(),
        }
        if M.CLASS_ACC in scored:
            out[f"{M.LABEL_ACC}_{d}"] = scored[M.CLASS_ACC]
        if truth is not None:
            out[f"{M.TRUTH_L1}_{d}"] = sums["truth"] / images.numel()
        return out
