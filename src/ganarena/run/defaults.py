"""The shipped default of an option, read from the yaml in ganarena's conf/ that sets it: the
one source of the examples in error messages ("e.g. model.ema_decay=0.99"), so a message never
suggests a value of the wrong scale. Reads the raw yaml (no composition), so it works while Hydra
is running; the files are read once, on the first error."""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any, NamedTuple

from omegaconf import OmegaConf

MISSING = object()
PRIMARY = ("train", "generate", "evaluate")  # conf/<name>.yaml: the entry points' configs


class Setting(NamedTuple):
    group: str | None  # the config group of the file (None: the entry point's own yaml)
    option: str  # the file's name in its group (e.g. "dcgan"), or the entry point's name
    value: Any
    is_global: bool  # a `# @package _global_` file (an experiment, a preset): not a default


def _package(text: str, group: str | None) -> str:
    """Where a file's keys land: its `# @package` header, else its group (Hydra 1.3 rules)."""
    for line in text.splitlines()[:5]:
        if line.startswith("# @package"):
            package = line.split(None, 2)[2].strip()
            package = package.replace("_group_", (group or "").replace("/", "."))
            return "" if package == "_global_" else package.removeprefix("_global_.")
    return (group or "").replace("/", ".")


def _leaves(node: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if not prefix and k == "defaults":
            continue
        out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


@functools.cache
def settings() -> dict[str, list[Setting]]:
    """Every plain value conf/ sets, by its full key (interpolations left out)."""
    conf = files("ganarena.conf")
    found: dict[str, list[Setting]] = {}

    def read(path, group: str | None, option: str) -> None:
        text = path.read_text()
        raw = OmegaConf.to_container(OmegaConf.create(text or "{}"), resolve=False)
        package = _package(text, group)
        is_global = package == "" and group is not None
        for key, value in _leaves(raw, package).items():
            if not (isinstance(value, str) and "${" in value):
                found.setdefault(key, []).append(Setting(group, option, value, is_global))

    for name in PRIMARY:
        read(conf / f"{name}.yaml", None, name)
    stack = [(conf, "")]
    while stack:
        folder, group = stack.pop()
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.is_dir() and not entry.name.startswith("__"):
                stack.append((entry, f"{group}/{entry.name}" if group else entry.name))
            elif group and entry.name.endswith(".yaml"):
                read(entry, group, entry.name[: -len(".yaml")])
    return found


@functools.cache
def primary_choices(config: str) -> dict[str, str]:
    """The group options an entry point's yaml picks in its defaults list (model: dcgan, ...)."""
    raw = OmegaConf.to_container(OmegaConf.load(str(files("ganarena.conf") / f"{config}.yaml")))
    picked = {}
    for item in raw.get("defaults", []):
        if isinstance(item, dict):
            for group, option in item.items():
                group = group.removeprefix("optional ").removeprefix("override ")
                if isinstance(option, str) and "${" not in option:
                    picked[group] = option
    return picked


def _runtime_choice(group: str) -> str | None:
    """The option of `group` in use in this Hydra run (None outside one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get(group)
            return choice if isinstance(choice, str) else None
    except Exception:  # noqa: BLE001 - only a preference: fall back to the shipped choice
        pass
    return None


def conf_default(key: str, choice: str | None = None, config: str = "train") -> Any:
    """The value conf/ gives `key` (a full dotted key, as on the command line): from the group
    file of option `choice` that sets it (e.g. choice="cyclegan" for task.*), else from the file
    of the option in use (a Hydra run) or the one `config`'s yaml picks, else the only group file
    that sets it, else conf/<config>.yaml itself, else a preset's (`_global_` file's); MISSING
    when conf/ sets no plain value there. `# @package` headers are honoured (regularizer.r1.gamma
    is gamma in conf/regularizer/r1.yaml)."""
    entries = settings().get(key, [])
    own = [e for e in entries if e.group is None and e.option == config]
    grouped = [e for e in entries if e.group is not None and not e.is_global]
    group = grouped[0].group if grouped else None
    wants = [choice] + (
        [_runtime_choice(group), primary_choices(config).get(group)] if group else []
    )
    for want in wants:
        match = [e for e in grouped if want is not None and e.option == want]
        if match:
            return match[0].value
    if len(grouped) == 1:
        return grouped[0].value
    if own:
        return own[0].value
    defaults = [e for e in grouped if e.option == "default"]
    if defaults:
        return defaults[0].value
    if grouped and len({repr(e.value) for e in grouped}) == 1:  # every file agrees
        return grouped[0].value
    presets = [e for e in entries if e.is_global]
    return presets[0].value if presets and not grouped else MISSING


def example(
    key: str, fallback: Any, choice: str | None = None, valid=None, config: str = "train"
) -> Any:
    """The shipped default of `key` when it is a value `valid` accepts (a number by default),
    else `fallback`: what a message shows after "e.g. key="."""
    value = conf_default(key, choice, config)
    ok = valid or (lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    return value if value is not MISSING and value is not None and ok(value) else fallback
