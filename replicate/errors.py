"""Errors that carry a one-line, user-facing message."""


class ReplicateError(Exception):
    """Base class: the CLI prints ``replicate: <message>`` and exits 2 without a traceback."""


class ConfigError(ReplicateError):
    """A configuration or command-line input is invalid; raised before any compute starts."""


class DataError(ReplicateError):
    """A data source is missing or malformed."""
