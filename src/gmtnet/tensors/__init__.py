"""Tensor algebra shared by the three tensor orders (one code path, parameterised by TensorType)."""

from gmtnet.tensors.tensor_type import (
    DIELECTRIC,
    DIELECTRIC_ELECTRONIC,
    DIELECTRIC_IONIC,
    ELASTIC,
    PART_TYPES,
    PIEZOELECTRIC,
    TENSOR_TYPES,
    TensorType,
    get_tensor_type,
    parent_type,
    part_types,
)
from gmtnet.tensors.voigt import from_voigt, to_voigt, PYMATGEN_VOIGT_ORDER, VASP_VOIGT_ORDER
from gmtnet.tensors.irreps import from_irreps, to_irreps, change_of_basis
from gmtnet.tensors.transform import rotate_tensor, random_orthogonal, tensor_action_matrix
from gmtnet.tensors.pymatgen_interop import to_pymatgen, from_pymatgen
from gmtnet.tensors.definiteness import Inertia, inertia, is_positive_definite

__all__ = [
    "DIELECTRIC",
    "DIELECTRIC_ELECTRONIC",
    "DIELECTRIC_IONIC",
    "ELASTIC",
    "PART_TYPES",
    "PIEZOELECTRIC",
    "TENSOR_TYPES",
    "TensorType",
    "get_tensor_type",
    "parent_type",
    "part_types",
    "from_voigt",
    "to_voigt",
    "PYMATGEN_VOIGT_ORDER",
    "VASP_VOIGT_ORDER",
    "from_irreps",
    "to_irreps",
    "change_of_basis",
    "rotate_tensor",
    "random_orthogonal",
    "tensor_action_matrix",
    "to_pymatgen",
    "from_pymatgen",
    "Inertia",
    "inertia",
    "is_positive_definite",
]
