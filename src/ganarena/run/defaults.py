"""The shipped default of an option, read from the yaml in ganarena's conf/ that sets it: the
one source of the examples in error messages ("e.g. model.ema_decay=0.99"), so a message never
suggests a value of the wrong scale. Reads the raw yaml (no composition), so it works while Hydra
is running and costs a file read, only on the error path."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from omegaconf import OmegaConf

MISSING = object()


def conf_default(key: str, choice: str | None = None, config: str = "train") -> Any:
    """The value conf/ gives `key` ("group.rest..."): from conf/<group>/<choice>.yaml (the
    group's option in use, e.g. choice="cyclegan" for task.*), else from the group's
    default.yaml, else from conf/<config>.yaml; MISSING when none sets it as a plain value
    (an interpolation or an inherited value counts as unset)."""
    conf = files("ganarena.conf")
    head, _, rest = key.partition(".")
    candidates = [(conf / head / f"{choice}.yaml", rest)] if choice and rest else []
    candidates += [(conf / head / "default.yaml", rest), (conf / f"{config}.yaml", key)]
    for path, sub in candidates:
        if not sub or not path.is_file():
            continue
        node = OmegaConf.load(str(path))
        if OmegaConf.select(node, sub, default=MISSING, throw_on_missing=False) is MISSING:
            continue
        raw = OmegaConf.to_container(node, resolve=False)
        for part in sub.split("."):
            raw = raw.get(part, MISSING) if isinstance(raw, dict) else MISSING
        if raw is not MISSING and not (isinstance(raw, str) and "${" in raw):
            return raw
    return MISSING


def example(key: str, fallback: Any, choice: str | None = None, valid=None) -> Any:
    """The shipped default of `key` when it is a value `valid` accepts (a number by default),
    else `fallback`: what a message shows after "e.g. key="."""
    value = conf_default(key, choice)
    ok = valid or (lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    return value if value is not MISSING and value is not None and ok(value) else fallback
