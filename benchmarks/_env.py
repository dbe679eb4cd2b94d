"""Hardware and version record written next to every benchmark result (see gmtnet.utils.environment)."""

from gmtnet.utils.environment import environment

__all__ = ["environment"]
