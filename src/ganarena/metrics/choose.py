"""Which evaluator scores a dataset's samples: chosen by ganarena-train and ganarena-eval from
the data's declared `scored_as` (ganarena.data.protocol), not built by the data itself."""

from __future__ import annotations

from ganarena.errors import ConfigError, check_memory

INCEPTION_DIM = 2048


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
    check_sample_memory(eval_cfg, kind)
    if kind == "images":
        from ganarena.metrics.evaluator import build_image_evaluator

        return build_image_evaluator(eval_cfg, datamodule, cache_dir, device)
    if kind == "points":
        from ganarena.metrics.mixture import MixtureEvaluator

        return MixtureEvaluator(eval_cfg, datamodule)
    if kind == "translation":
        from ganarena.metrics.translation import TranslationEvaluator

        return TranslationEvaluator(eval_cfg, datamodule, cache_dir, device)
    if kind == "stacked_digits":  # Stacked MNIST: a digit classifier on each channel
        from ganarena.metrics.stacked import StackedMNISTEvaluator

        return StackedMNISTEvaluator(eval_cfg, datamodule, cache_dir, device)
    raise ConfigError(
        f"Dataset '{datamodule.name}' declares scored_as={kind!r}; ganarena scores 'images', "
        "'points', 'translation' or 'stacked_digits'. Fix the datamodule's scored_as."
    )


def check_sample_memory(eval_cfg, kind: str) -> None:
    """Refuse eval.n_samples whose scoring cannot be held in memory (the generated samples'
    labels and backbone features are kept for KID, precision/recall and the class counts), with
    the estimate, before any backbone is built."""
    n = int(eval_cfg.get("n_samples", 10000))
    if kind == "points":
        dim = 2
    elif eval_cfg.get("backbone") == "inception":
        dim = INCEPTION_DIM
    else:
        dim = int((eval_cfg.get("classifier") or {}).get("features", 128))
    check_memory(
        n * (8 + 4 * dim),
        f"Scoring eval.n_samples={n} (their labels and {dim}-d features)",
        "Lower eval.n_samples (10000 gives reportable scores; 50000 is the customary maximum).",
    )
