"""What each regulariser declares: the network it constrains, whether it is a per-sample gradient
penalty (so no batch norm in that network, which mixes a batch's samples), whether it needs a
double backward (so no torch.compile), and the discriminator normalisation its paper prescribes
(what model.d_norm=auto picks). The config checks (run/config.py) follow these declarations, not
names.

Every regulariser — built in (gp, clip, r1, r2, lecam, path_length) or your own — is a
`ganarena.gan.penalties.Penalty` subclass named by `conf/regularizer/<name>.yaml`, listed as
`regularizer=[name, ...]` or brought by a loss or preset; it declares these facts as class
attributes, and `declared` reads them from the classes without building them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Regularizer:
    name: str  # as a message names it
    key: str  # its config node (regularizer.<name>)
    network: str  # "d" (discriminator / critic) or "g" (generator)
    per_sample: bool
    double_backward: bool
    d_norm: str | None  # model.d_norm=auto with this regulariser on; None: no prescription
    why: str  # the paper's reason, for the batch-norm refusal
    off: str  # what to do instead, on the command line


# -- plug-in regularisers (regularizer=[name, ...], conf/regularizer/<name>.yaml) ---------------
def declared(entries: Mapping[str, Any] | None) -> list[Regularizer]:
    """The declarations of the regularisers a config lists (`regularizer:` node, name ->
    {_target_: a Penalty subclass, ...}), read from their classes without building them; an entry
    whose weight or gamma is 0 is off. A ConfigError for an entry that is not a Penalty."""
    if not entries:
        return []
    from hydra.utils import get_class

    from ganarena.errors import ConfigError
    from ganarena.gan.penalties import Penalty  # torch: only when a config lists plug-ins

    out = []
    for name, node in (entries or {}).items():
        if node is None:  # regularizer.<name>=null switches one off
            continue
        if isinstance(node, Mapping) and any(node.get(k) == 0 for k in ("weight", "gamma")):
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
        if cls.network not in ("d", "g"):
            raise ConfigError(
                f"regularizer.{name} ({cls.__name__}) declares network={cls.network!r}; a "
                "regulariser acts on the discriminator ('d') or the generator ('g')."
            )
        out.append(
            Regularizer(
                f"regularizer.{name} ({cls.__name__})", f"regularizer.{name}", cls.network,
                per_sample=cls.per_sample, double_backward=cls.double_backward,
                d_norm=cls.d_norm, why=cls.why,
                off=f"model.d_norm=auto (or none / layer), or drop it: ~regularizer.{name}",
            )
        )  # fmt: skip
    return out
