"""FID / IS / KID evaluation: backbones (domain classifier, Inception), reference-stat cache,
and the metric registry (ganarena.metrics.registry).

The heavy names load on first use, so `ganarena.metrics.registry` (imported by verdict, compare,
hparams) pulls in neither torch models nor the backbones."""

from importlib import import_module

_EXPORTS = {
    "Evaluator": "ganarena.metrics.evaluator",
    "build_evaluator": "ganarena.metrics.choose",
    "build_image_evaluator": "ganarena.metrics.evaluator",
    "build_backbone": "ganarena.metrics.backbones",
    "frechet_distance": "ganarena.metrics.fid",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ganarena.metrics' has no attribute {name!r}")
