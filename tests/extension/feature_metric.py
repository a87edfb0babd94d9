"""A metric that lives outside the package: the worked example of a plug-in metric.

`mean_cosine`: the cosine similarity between the mean backbone feature of the generated samples
and that of the real reference (1: the two clouds are centred alike). Higher is better, so
ganarena-compare sorts it the other way round from FID. Its real-side statistic (the real
feature mean) is declared with its own cache key and version: ganarena computes it once from
the reference's real features and caches it beside the reference statistics, in a file of its
own. Selected with hydra.searchpath=[file://tests/extension/conf] eval=with_mean_cosine (or any
eval.extra_metrics entry); tests/test_extension_metric.py drives it through the ordinary commands.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganarena.metrics.registry import Metric


class MeanCosine(Metric):
    higher_is_better = True
    label = "mean-feature cosine"
    cache_key = "feature_mean"  # the real-side statistic, cached under this key ...
    version = 1  # ... and version (bump it when real_statistics changes)

    def __init__(self, eps: float = 1e-12):
        self.eps = eps

    def real_statistics(self, real_features: Tensor, real_labels: Tensor | None) -> dict:
        return {"mean": real_features.double().mean(0)}

    def compute(self, fake_features: Tensor, fake_logits: Tensor, real: dict) -> float:
        fake_mean = fake_features.double().mean(0)
        return float(
            torch.nn.functional.cosine_similarity(fake_mean, real["mean"], dim=0, eps=self.eps)
        )
