"""What each regulariser declares: the network it constrains, whether it is a per-sample gradient
penalty (so no batch norm in that network, which mixes a batch's samples), whether it needs a
double backward (so no torch.compile), and the discriminator normalisation its paper prescribes
(what model.d_norm=auto picks). The config checks (config.py) follow these declarations, not
names; the terms themselves are in losses.py (gradient penalty, clipping) and penalties.py (R1,
path length), applied by the GAN task's phases (tasks/gan.py).
"""

from __future__ import annotations

from dataclasses import dataclass


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
