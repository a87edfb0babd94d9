"""How much memory a dataset will take, how much the machine has, and the refusal when it will not fit."""

from __future__ import annotations

import logging
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


def check_fits(need: int, what: str, fix: str) -> None:
    """ConfigError when `need` bytes (what: the set described) exceed FIT_FRACTION of the
    available memory; `fix` says how to do with less (e.g. name dataset.in_memory=false)."""
    avail = available_bytes()
    if avail is None or need <= FIT_FRACTION * avail:
        return
    raise ConfigError(
        f"{what} would take about {fmt(need)} of memory, but this machine has {fmt(avail)} "
        f"available (MemAvailable in /proc/meminfo, or the cgroup limit), and ganarena holds a "
        f"dataset in memory only up to {FIT_FRACTION:.0%} of that, leaving the rest to training: "
        f"it will not fit. {fix}"
    )


def auto_in_memory(need: int) -> bool:
    """dataset.in_memory=auto: whether a set of `need` bytes is held in memory (else streamed)."""
    avail = available_bytes()
    return need <= AUTO_MAX_BYTES and (avail is None or need <= AUTO_FRACTION * avail)
