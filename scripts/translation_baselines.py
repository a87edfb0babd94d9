"""Score the fixed mappings a translation model is compared with, by the evaluator a run uses.

- identity: no translation at all (G(a) = a, F(b) = b): what a model that learns nothing scores;
- truth:    the true mapping, where the dataset knows it (dataset=mnist2inverted): the best
            score reachable with this evaluator (label preservation = the classifier's accuracy).

Prints one JSON line per mapping: {"mapping", "scores", "eval"}. Overrides are ganarena-train's
(the dataset, eval.*, paths.cache_dir), so the numbers sit beside a run's metrics.json "final":

    python scripts/translation_baselines.py experiment=cyclegan_digits eval.n_samples=1000
    python scripts/translation_baselines.py experiment=cyclegan_digits dataset=mnist2digits
"""

from __future__ import annotations

import json
import sys

import torch
from hydra import compose, initialize_config_module

from ganarena.metrics import build_evaluator
from ganarena.run.config import build


class FixedMapping:
    """A stand-in translation task: `translate(x, direction)` by fixed functions."""

    kind = "translation"
    device = torch.device("cpu")

    def __init__(self, ab, ba) -> None:
        self.maps = {"ab": ab, "ba": ba}

    def translate(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        return self.maps[direction](x).float()


def main(overrides: list[str]) -> None:
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = build(cfg.dataset)
    dm.setup("fit")
    evaluator = build_evaluator(cfg.eval, dm, cfg.paths.cache_dir)
    mappings = {"identity": FixedMapping(lambda x: x, lambda x: x)}
    if dm.truth_ab is not None:
        mappings["truth"] = FixedMapping(dm.truth_ab, dm.truth_ba)
    for name, task in mappings.items():
        scores = evaluator.score_module(task)
        print(json.dumps({"mapping": name, "scores": scores, "eval": evaluator.settings}))


if __name__ == "__main__":
    main(sys.argv[1:])
