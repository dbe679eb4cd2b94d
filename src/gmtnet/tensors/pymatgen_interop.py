"""Conversion between gmtnet's numpy tensors and pymatgen's tensor classes."""

from __future__ import annotations

import numpy as np

from gmtnet.tensors.tensor_type import ELASTIC, PIEZOELECTRIC, TensorType


def to_pymatgen(tensor: np.ndarray, ttype: TensorType):
    """pymatgen object for a full Cartesian tensor: ElasticTensor, PiezoTensor or Tensor."""
    from pymatgen.analysis.elasticity import ElasticTensor
    from pymatgen.analysis.piezo import PiezoTensor
    from pymatgen.core.tensors import Tensor

    array = np.asarray(tensor, dtype=float)
    if array.shape != ttype.shape:
        raise ValueError(f"{ttype.name} tensor must have shape {ttype.shape}, got {array.shape}")
    if ttype == ELASTIC:
        return ElasticTensor(array)
    if ttype == PIEZOELECTRIC:
        return PiezoTensor(array)
    return Tensor(array)


def from_pymatgen(obj) -> np.ndarray:
    """Full Cartesian float64 array of a pymatgen Tensor (or any array-like)."""
    return np.array(obj, dtype=float)


__all__ = ["to_pymatgen", "from_pymatgen"]
