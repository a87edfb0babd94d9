"""User-facing errors: entry points print these as one paragraph and exit non-zero."""


class GanarenaError(Exception):
    """A problem the user can fix (bad config, missing data or weights, corrupt checkpoint).

    The message names the problem and the fix; entry points print it without a traceback.
    """


class ConfigError(GanarenaError):
    """An invalid or incompatible configuration value."""


class DataError(GanarenaError):
    """Missing, empty or malformed data."""


class CheckpointError(GanarenaError):
    """A checkpoint that is missing, corrupt or from another model."""


class DivergedError(GanarenaError):
    """Training produced NaN/inf losses or weights."""

    exit_code = 3


def check_int(key: str, value, minimum: int = 1, fix: str | None = None) -> int:
    """`value` as an int if it is a whole number >= minimum (bools refused), else a ConfigError
    naming `key` and the fix (by default: the command-line override)."""
    from numbers import Integral

    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        fix = fix or f"Fix it on the command line, e.g. {key}={max(minimum, 1)}."
        raise ConfigError(f"{key} must be {kind}, got {value!r}. {fix}")
    return int(value)


def physical_memory() -> int:
    """Bytes of RAM on this machine (0 where the OS does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


def check_memory(need: float, what: str, fix: str) -> None:
    """ConfigError up front when `need` bytes (a lower bound for `what`) exceed this machine's
    RAM, with the estimate, instead of an allocation failure (or swapping) later."""
    have = physical_memory()
    if have and need > have:
        raise ConfigError(
            f"{what} needs at least {_size(need)} of memory, more than this machine's "
            f"{_size(have)}. {fix}"
        )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"
