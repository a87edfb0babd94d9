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
