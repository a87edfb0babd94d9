"""Which evaluator scores a dataset's samples: chosen by ganarena-train and ganarena-eval from
the data's declared `scored_as` (ganarena.data.protocol), not built by the data itself."""

from __future__ import annotations

from ganarena.errors import ConfigError


def build_evaluator(eval_cfg, datamodule, cache_dir: str, device=None):
    """The evaluator for `datamodule`'s kind of samples under `eval_cfg`, or None for
    eval.backbone=none: images -> FID/IS/KID in a backbone's features (metrics.evaluator),
    points -> modes and high-quality samples (metrics.mixture), translation -> each direction
    against its target domain (metrics.translation)."""
    if eval_cfg.get("backbone", "none") == "none":
        return None
    if datamodule is None:
        raise ConfigError(
            "Evaluation needs a dataset for its real reference statistics: pass dataset=<name>."
        )
    kind = datamodule.scored_as
    if kind == "images":
        from ganarena.metrics.evaluator import build_image_evaluator

        return build_image_evaluator(eval_cfg, datamodule, cache_dir, device)
    if kind == "points":
        from ganarena.metrics.mixture import MixtureEvaluator

        return MixtureEvaluator(eval_cfg, datamodule)
    if kind == "translation":
        from ganarena.metrics.translation import TranslationEvaluator

        return TranslationEvaluator(eval_cfg, datamodule, cache_dir, device)
    raise ConfigError(
        f"Dataset '{datamodule.name}' declares scored_as={kind!r}; ganarena scores 'images', "
        "'points' or 'translation'. Fix the datamodule's scored_as."
    )
