"""Cartesian <-> irreps conversion through e3nn's ``CartesianTensor``.

The change of basis Q (dim, 3, ..., 3) is built once per formula in float64 and cached; it is
orthonormal (Q Q^T = I), so ``to_irreps`` then ``from_irreps`` is the orthogonal projection onto
the tensor type's index symmetry. The irreps carry parity: piezoelectric gives 2x1o+1x2o+1x3o.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: tensor_type imports this module
    from gmtnet.tensors.tensor_type import TensorType


@contextmanager
def float64_default():
    """Temporarily make float64 torch's default dtype (restored on exit)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@lru_cache(maxsize=None)
def cartesian_tensor(formula: str):
    """The e3nn ``CartesianTensor`` (an ``Irreps``) for an index-symmetry formula."""
    from e3nn.io import CartesianTensor

    return CartesianTensor(formula)


def column_ls(irreps) -> torch.Tensor:
    """(irreps.dim,) long: the rotation order l of each column of features laid out as ``irreps``."""
    return torch.tensor([ir.l for mul, ir in irreps for _ in range(mul * ir.dim)], dtype=torch.long)


@lru_cache(maxsize=None)
def _change_of_basis(formula: str) -> torch.Tensor:
    with float64_default():
        q = cartesian_tensor(formula).reduced_tensor_products().change_of_basis
    return q.detach().to(torch.float64).clone()


def change_of_basis(ttype: TensorType, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal change of basis Q, shape (irreps.dim, 3, ..., 3): irreps x -> Cartesian x @ Q."""
    return _change_of_basis(ttype.formula).to(dtype=dtype, device=device)


def to_irreps(tensor: torch.Tensor, ttype: TensorType) -> torch.Tensor:
    """Irreps coefficients (..., irreps.dim) of a Cartesian tensor (..., 3, ..., 3)."""
    tensor = torch.as_tensor(tensor)
    q = change_of_basis(ttype, tensor.dtype, tensor.device).flatten(1)
    return tensor.flatten(-ttype.order) @ q.T


def from_irreps(x: torch.Tensor, ttype: TensorType) -> torch.Tensor:
    """Cartesian tensor (..., 3, ..., 3) from irreps coefficients (..., irreps.dim)."""
    x = torch.as_tensor(x)
    q = change_of_basis(ttype, x.dtype, x.device).flatten(1)
    return (x @ q).reshape(*x.shape[:-1], *ttype.shape)
