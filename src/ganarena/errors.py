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
