"""How much memory a dataset will take, how much the machine has, and the refusal when it will not fit."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ganarena.errors import ConfigError

log = logging.getLogger(__name__)

# An in-memory set is refused when it would take more than this share of the available memory:
# training itself (torch, the networks, the evaluator, loader workers) needs the rest.
FIT_FRACTION = 0.8
# dataset.in_memory=auto holds a set in memory when it takes at most this much (uint8) and at most
# AUTO_FRACTION of the available memory; larger sets are streamed from disk.
AUTO_MAX_BYTES = 1024**3
AUTO_FRACTION = 0.25


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None when unlimited."""
    for limit_file, used_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            used = int(Path(used_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes a huge number for "none"
            return None
        return max(0, int(limit) - used)
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can take: MemAvailable of /proc/meminfo, lowered to what is left
    under a cgroup (container, SLURM job) limit; None where neither can be read."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        found = None
    room = _cgroup_room()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def fmt(n: float) -> str:
    """Bytes for people: 2.46 GB, 61.2 MB (powers of 1000, as `free -h --si` and disk sizes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}" if n < 100 * scale else f"{n / scale:.0f} {unit}"
    return f"{int(n)} B"


# How many processes on this node will each hold their own copy of an in-memory set (see
# copies_on_node); set around the datamodule's setup by ganarena-train (`holding`).
_copies = 1


def copies_on_node(trainer: Mapping) -> int:
    """How many copies of an in-memory dataset this process should plan for on its node, from
    the trainer config (trainer.devices, trainer.strategy, trainer.accelerator).

    One per device: Lightning 2 runs every multi-device strategy as one process per device, and
    under ddp (Lightning's subprocess launcher, torchrun, SLURM tasks) each process builds its
    own datamodule. Counted in full by the node's first process (local rank 0), which checks
    before the others start; a later rank counts its own copy only, the others' already being
    out of the available memory. One under ddp_spawn / ddp_fork / ddp_notebook: the ranks get
    the launching process's datamodule, whose tensors torch.multiprocessing moves into shared
    memory (spawn) or that fork leaves shared, so the node holds one copy."""
    strategy = str(trainer.get("strategy", "auto"))
    if any(s in strategy for s in ("spawn", "fork", "notebook")):
        return 1
    local_rank = os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    if local_rank.strip() not in ("", "0"):
        return 1
    return _devices(trainer.get("devices", 1), str(trainer.get("accelerator", "auto")))


def _devices(devices, accelerator: str) -> int:
    """The device count Lightning reads from trainer.devices: N, a list or "0,1" (GPU ids), or
    -1 / "auto" (every GPU; one CPU process)."""
    if isinstance(devices, str):
        devices = devices.strip()
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        devices = int(devices) if devices.lstrip("-").isdigit() else devices
    if isinstance(devices, bool):
        return 1
    if isinstance(devices, int) and devices > 0:
        return devices
    if not isinstance(devices, int | str):  # a list (ListConfig) of device ids
        return max(1, len(devices))
    if accelerator in ("gpu", "cuda", "auto"):
        import torch

        return max(1, torch.cuda.device_count())
    return 1


@contextmanager
def holding(copies: int) -> Iterator[None]:
    """Within: every in-memory set is checked and chosen (check_fits, auto_in_memory) as held
    `copies` times on this node (ganarena-train: copies_on_node around the datamodule's setup)."""
    global _copies
    before, _copies = _copies, max(1, int(copies))
    try:
        yield
    finally:
        _copies = before


def held(need: int) -> str:
    """`need` bytes of one copy as the node will hold them: "2.46 GB", or with several copies
    "2 processes x 2.46 GB = 4.92 GB" (see `holding`)."""
    if _copies == 1:
        return fmt(need)
    return f"{_copies} processes x {fmt(need)} = {fmt(_copies * need)}"


def check_fits(need: int, what: str, fix: str) -> None:
    """ConfigError when `need` bytes (what: the set described), times the copies this node will
    hold (`holding`: one per DDP process), exceed FIT_FRACTION of the available memory; `fix`
    says how to do with less (e.g. name dataset.in_memory=false)."""
    avail = available_bytes()
    if avail is None or _copies * need <= FIT_FRACTION * avail:
        return
    size = held(need)
    if _copies > 1:
        size += " (every DDP rank on this node holds its own copy)"
        fix += (
            " A streamed set (dataset.in_memory=false) is not copied: under DDP each rank reads "
            "its own share from disk."
        )
    raise ConfigError(
        f"{what} would take about {size} of memory, but this machine has {fmt(avail)} "
        f"available (MemAvailable in /proc/meminfo, or the cgroup limit), and ganarena holds a "
        f"dataset in memory only up to {FIT_FRACTION:.0%} of that, leaving the rest to training: "
        f"it will not fit. {fix}"
    )


def auto_in_memory(need: int) -> bool:
    """dataset.in_memory=auto: whether a set of `need` bytes is held in memory (else streamed):
    at most AUTO_MAX_BYTES, and its copies on this node (`holding`) at most AUTO_FRACTION of the
    available memory."""
    avail = available_bytes()
    return need <= AUTO_MAX_BYTES and (avail is None or _copies * need <= AUTO_FRACTION * avail)
