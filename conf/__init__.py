"""Hydra configs shipped with ganarena (conf/ at the repo root links here)."""
