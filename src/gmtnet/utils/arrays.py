"""Small array helpers shared across packages."""

from __future__ import annotations

import numpy as np


def concat_present(parts: list) -> np.ndarray | None:
    """The arrays of ``parts`` concatenated, or None if any is None (a field some graphs lack)."""
    return None if any(p is None for p in parts) else np.concatenate(parts)
