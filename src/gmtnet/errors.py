"""Exceptions whose message is a complete one-line explanation for the user."""


class GmtnetError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits with status 1."""


class StructureError(GmtnetError, ValueError):
    """A structure is unreadable or unusable (disorder, overlap, NaN, unknown element, ...)."""


class TensorError(GmtnetError, ValueError):
    """A tensor label has the wrong shape or non-finite entries."""


class DataNotFoundError(GmtnetError, FileNotFoundError):
    """A dataset is not in the cache or at the given path."""
