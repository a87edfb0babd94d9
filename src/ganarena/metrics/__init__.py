"""FID / IS / KID evaluation: backbones (domain classifier, Inception), reference-stat cache."""

from ganarena.metrics.backbones import build_backbone
from ganarena.metrics.evaluator import Evaluator, build_evaluator
from ganarena.metrics.fid import frechet_distance

__all__ = ["Evaluator", "build_backbone", "build_evaluator", "frechet_distance"]
