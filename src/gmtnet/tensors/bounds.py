"""Physical bounds by construction: a map from any symmetric tensor to one a stable crystal can have.

A tensor T of a type whose response and perturbation are the same field (dielectric: D from E;
elastic: stress from strain) is a symmetric linear operator on that field's space V (V = R^3, or
the symmetric 3x3 matrices). A stable crystal's T is bounded below as such an operator:
permittivity eps - 1 and stiffness C are positive definite (``TensorType.lower_bound`` = 1 and 0).

``bounded(S)`` = B^T (b I + s expm(squash(B S B^T))) B maps any S obeying the index symmetry to a
tensor that satisfies the bound, where B (d, 3^m) is an orthonormal basis of V (e3nn's change of
basis of the perturbation), b the lower bound and s > 0 a scale. squash(M) = M r tanh(|M|/r)/|M|
(|M| the Frobenius norm, r = ``EXPONENT_RANGE``) keeps every eigenvalue of the exponent inside
(-r, r). Every eigenvalue of the result as an operator on V is then b + s exp(lambda) with
s e^-r < s exp(lambda) < s e^r: above the bound by a margin that float32 rounding of the largest
entries (relative 6e-8, times e^2r = 1.6e5) cannot eat, whatever the network outputs.

Why it keeps every symmetry. A rotation or reflection R acts on V by an orthogonal matrix
Q_R = B (R x ... x R) B^T (the action on V preserves the inner product), and on the operator by
M -> Q_R M Q_R^T. For orthogonal Q, |Q M Q^T| = |M| (so squash commutes with it), expm(Q M Q^T) =
Q expm(M) Q^T (the power series term by term) and Q I Q^T = I. So ``bounded`` commutes with every R: an O(3)-equivariant S gives an
O(3)-equivariant tensor, and an S invariant under the crystal's point group gives an invariant one
(the same forced zeros and equalities). The Reynolds projection afterwards averages the tensor over
the group, i.e. averages matrices Q (bI + P) Q^T with P positive definite: the mean of such
matrices is again b I plus a positive definite one, so the projection keeps the bound.
The matrix exponential (Pade with scaling and squaring) has finite derivatives everywhere, also
where eigenvalues coincide (cubic crystals), unlike maps through an eigendecomposition.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from gmtnet.tensors.definiteness import inertia
from gmtnet.tensors.irreps import _change_of_basis
from gmtnet.tensors.tensor_type import TensorType

#: Bound r on the eigenvalues of the exponent: the output's eigenvalues above the bound lie in
#: (e^-r, e^r) times the scale (for the stiffness, scale ~70 GPa: 0.17 GPa to 28,000 GPa).
EXPONENT_RANGE = 6.0


def has_bound(ttype: TensorType) -> bool:
    """Whether the type has a lower bound as an operator (``lower_bound`` is set)."""
    return ttype.lower_bound is not None


@lru_cache(maxsize=None)
def _basis(perturbation: str) -> np.ndarray:
    return _change_of_basis(perturbation).flatten(1).numpy()


def operator_basis(ttype: TensorType) -> np.ndarray:
    """B (d, 3^m): orthonormal rows spanning the space V of the perturbation (m its order)."""
    if not has_bound(ttype):
        raise ValueError(f"tensor type {ttype.name!r} has no lower bound as an operator")
    return _basis(ttype.perturbation)


def operator_matrix(tensor, ttype: TensorType):
    """(..., d, d): the tensor as a matrix on V, B T B^T (numpy or torch; ``tensor`` (..., 3, ..., 3))."""
    b = operator_basis(ttype)
    n = b.shape[1]
    if isinstance(tensor, torch.Tensor):
        bt = torch.as_tensor(b, dtype=tensor.dtype, device=tensor.device)
        return bt @ tensor.reshape(*tensor.shape[:-ttype.order], n, n) @ bt.T
    t = np.asarray(tensor)
    return b @ t.reshape(*t.shape[:-ttype.order], n, n) @ b.T


def operator_eigenvalues(tensor: np.ndarray, ttype: TensorType) -> np.ndarray:
    """(..., d) eigenvalues (ascending) of the tensor as an operator on V: its bound holds when the
    smallest exceeds ``ttype.lower_bound``."""
    m = operator_matrix(np.asarray(tensor, dtype=np.float64), ttype)
    return np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, -1, -2)))


def within_bound(tensor: np.ndarray, ttype: TensorType) -> bool:
    """Whether ``tensor`` (3, ..., 3) obeys its type's bound: T - lower_bound I positive definite
    as an operator (stiffness: Born stability; permittivity: every eigenvalue above 1), or
    positive semidefinite for a type whose bound is not strict (ionic permittivity: no eigenvalue
    below 0), decided by the exact inertia of the operator's matrix."""
    m = operator_matrix(np.asarray(tensor, dtype=np.float64), ttype)
    counts = inertia(m - ttype.lower_bound * np.eye(len(m)))
    return counts.positive_definite if ttype.strict_bound else counts.negative == 0


def violation_name(ttype: TensorType) -> str:
    """How a violation of the type's bound reads in a table."""
    if ttype.strict_bound and ttype.lower_bound == 0.0:
        return "not positive definite"
    return f"eigenvalue {'<=' if ttype.strict_bound else '<'} {ttype.lower_bound:g}"


def bounded(raw: torch.Tensor, ttype: TensorType, scale: float) -> torch.Tensor:
    """(B, 3, ..., 3): B^T (lower_bound I + scale expm(squash(B raw B^T))) B for a batch of
    tensors ``raw`` obeying the type's index symmetry (the module doc proves the bound and the
    symmetries)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    b = torch.as_tensor(operator_basis(ttype), dtype=raw.dtype, device=raw.device)
    d, n = b.shape
    m = b @ raw.reshape(raw.shape[0], n, n) @ b.T
    m = 0.5 * (m + m.transpose(1, 2))
    norm = torch.sqrt((m * m).sum(dim=(1, 2), keepdim=True) + torch.finfo(m.dtype).tiny)
    m = m * (EXPONENT_RANGE * torch.tanh(norm / EXPONENT_RANGE) / norm)
    op = torch.linalg.matrix_exp(m) * scale
    if ttype.lower_bound:
        op = op + ttype.lower_bound * torch.eye(d, dtype=raw.dtype, device=raw.device)
    return (b.T @ op @ b).reshape(raw.shape)


__all__ = ["EXPONENT_RANGE", "bounded", "has_bound", "operator_basis", "operator_eigenvalues", "operator_matrix",
           "violation_name", "within_bound"]
