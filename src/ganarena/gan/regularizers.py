"""What each regulariser declares: the network it constrains, whether it is a per-sample gradient
penalty (so no batch norm in that network, which mixes a batch's samples), whether it needs a
double backward (so no torch.compile), and the discriminator normalisation its paper prescribes
(what model.d_norm=auto picks). The config checks (config.py) follow these declarations, not
names; the terms themselves are in losses.py (gradient penalty, clipping) and penalties.py (R1,
path length), applied by the GAN task's phases (tasks/gan.py).

Regularisers beyond the built-in keys come in as files: a `ganarena.gan.penalties.Penalty` subclass
(`R2`, or one of your own) named by `conf/regularizer/<name>.yaml` and listed as `regularizer=[name, ...]`; it
declares the same facts as class attributes, and the checks read them (`declared`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Regularizer:
    name: str  # as a message names it
    key: str  # the config key whose value turns it on (a weight > 0, or a clip value)
    network: str  # "d" (discriminator / critic) or "g" (generator)
    per_sample: bool
    double_backward: bool
    d_norm: str | None  # model.d_norm=auto with this regulariser on; None: no prescription
    why: str  # the paper's reason, for the batch-norm refusal
    off: str  # how to turn it off on the command line


REGULARIZERS: tuple[Regularizer, ...] = (
    Regularizer(
        "A gradient penalty", "loss.gp_weight", "d", per_sample=True, double_backward=True,
        d_norm="layer", why="(Gulrajani et al. 2017, sec. 4)", off="model.d_norm=layer (or auto)",
    ),
    Regularizer(
        "The R1 penalty", "task.r1.gamma", "d", per_sample=True, double_backward=True,
        d_norm="none", why="(Mescheder et al. 2018), which mixes the samples of a batch",
        off="model.d_norm=none (or auto), or task.r1.gamma=0",
    ),
    Regularizer(
        "Path-length regularisation", "task.path_length.weight", "g", per_sample=False,
        double_backward=True, d_norm=None, why="", off="task.path_length.weight=0",
    ),
    Regularizer(
        "Weight clipping", "loss.clip_value", "d", per_sample=False, double_backward=False,
        d_norm=None, why="", off="loss.clip_value=null",
    ),
)  # fmt: skip


def active(get) -> list[Regularizer]:
    """The regularisers a config turns on; `get(key)` reads a config value (None when absent)."""
    return [r for r in REGULARIZERS if get(r.key)]


# -- plug-in regularisers (regularizer=[name, ...], conf/regularizer/<name>.yaml) ---------------
def declared(entries: Mapping[str, Any] | None) -> list[Regularizer]:
    """The declarations of the plug-in regularisers a config lists (`regularizer:` node, name ->
    {_target_: a Penalty subclass, ...}), read from their classes without building them; a
    ConfigError for an entry that is not one."""
    if not entries:
        return []
    from hydra.utils import get_class

    from ganarena.errors import ConfigError
    from ganarena.gan.penalties import Penalty  # torch: only when a config lists plug-ins

    out = []
    for name, node in (entries or {}).items():
        if node is None:  # regularizer.<name>=null switches one off
            continue
        target = node.get("_target_") if isinstance(node, Mapping) else None
        try:
            cls = get_class(target) if isinstance(target, str) else None
        except Exception:  # noqa: BLE001 - the message below says what to fix
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, Penalty)):
            raise ConfigError(
                f"regularizer.{name} must name a ganarena.gan.penalties.Penalty subclass in its "
                f"_target_ (importable: put its folder on PYTHONPATH), got {target!r}. See the "
                "README's 'A regulariser' example, or remove it with ~regularizer." + str(name)
            )
        if cls.network != "d":
            raise ConfigError(
                f"regularizer.{name} ({cls.__name__}) declares network={cls.network!r}; plug-in "
                "regularisers act on the discriminator ('d'). Generator-side terms are built in "
                "(task.path_length)."
            )
        out.append(
            Regularizer(
                f"regularizer.{name} ({cls.__name__})", f"regularizer.{name}", "d",
                per_sample=cls.per_sample, double_backward=cls.double_backward,
                d_norm=cls.d_norm, why="", off=f"~regularizer.{name}",
            )
        )  # fmt: skip
    return out
