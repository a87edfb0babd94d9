"""ganarena: train, sweep, evaluate and compare GANs honestly."""

__version__ = "0.1.0"
