"""ganarena: train, sweep, evaluate and compare GANs honestly.

    import ganarena
    result = ganarena.fit(["trainer.max_steps=200"])      # a run: scores, verdict, folder
    images = ganarena.load(result.checkpoint).sample(16, seed=0)
    table = ganarena.compare([sweep_folder])              # rows of dicts

(ganarena.api has the rest; imported on first use, so `import ganarena` stays light.)"""

__version__ = "0.1.0"
__all__ = ["fit", "load", "compare"]


def __getattr__(name: str):
    if name in __all__:
        from ganarena import api

        return getattr(api, name)
    raise AttributeError(f"module 'ganarena' has no attribute {name!r}")
