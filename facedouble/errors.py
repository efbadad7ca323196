"""The one exception type the CLI turns into a one-line error and a non-zero exit."""


class FacedoubleError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class InputError(FacedoubleError):
    """Unreadable, truncated or malformed input."""

    exit_code = 3


class PolicyError(FacedoubleError):
    """Refused by a trust rule (missing consent, explicit content)."""

    exit_code = 4
