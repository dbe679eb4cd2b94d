"""CGCNN atom features (92-d, Xie & Grossman 2018) as shipped with jarvis-tools."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

ATOM_FEATURE_DIM = 92


@lru_cache(maxsize=1)
def _table() -> np.ndarray:
    """(101, 92) float32 table; row Z holds element Z's features, row 0 is all NaN."""
    text = resources.files("jarvis.core").joinpath("atom_init.json").read_text()
    data = json.loads(text)
    table = np.full((max(int(z) for z in data) + 1, ATOM_FEATURE_DIM), np.nan, dtype=np.float32)
    for z, features in data.items():
        table[int(z)] = features
    return table


def atom_features(atomic_numbers) -> np.ndarray:
    """(n, 92) float32 CGCNN features; raises ValueError naming an element without features."""
    z = np.asarray(atomic_numbers, dtype=np.int64)
    table = _table()
    bad = (z < 1) | (z >= len(table))
    if bad.any() or np.isnan(table[z[~bad]]).any():
        raise ValueError(f"no CGCNN atom features for atomic number(s) {sorted(set(z[bad].tolist()))}")
    return table[z]
