"""The action of O(3) on Cartesian tensors.

T'_{i1..in} = s * R_{i1 j1} ... R_{in jn} T_{j1..jn}, with s = det(R) for an axial tensor and 1
for a polar one. R is a Cartesian orthogonal matrix (proper or improper); the formula is also the
definition used for the (not exactly orthogonal) lattice-derived matrices of real crystals.
"""

from __future__ import annotations

import string

import numpy as np

from gmtnet.tensors.tensor_type import TensorType


def _einsum_spec(order: int) -> str:
    out = string.ascii_lowercase[:order]
    inp = string.ascii_lowercase[order : 2 * order]
    rots = ",".join(f"{o}{i}" for o, i in zip(out, inp))
    return f"{rots},...{inp}->...{out}"


def rotate_tensor(tensor, rotation, ttype: TensorType | None = None):
    """Apply the 3x3 matrix ``rotation`` to every index of ``tensor`` (..., 3, ..., 3).

    Works with numpy arrays and torch tensors. ``ttype`` gives the order (default: all trailing
    axes of length 3 up to the tensor's ndim when no batch) and whether the tensor is axial.
    """
    order = ttype.order if ttype is not None else tensor.ndim
    spec = _einsum_spec(order)
    if type(tensor).__module__.startswith("torch"):
        import torch

        r = torch.as_tensor(rotation, dtype=tensor.dtype, device=tensor.device)
        out = torch.einsum(spec, *([r] * order), tensor)
        if ttype is not None and ttype.axial:
            out = out * torch.linalg.det(r)
        return out
    r = np.asarray(rotation, dtype=float)
    out = np.einsum(spec, *([r] * order), np.asarray(tensor), optimize=True)
    if ttype is not None and ttype.axial:
        out = out * np.linalg.det(r)
    return out


def tensor_action_matrix(rotation: np.ndarray, ttype: TensorType) -> np.ndarray:
    """The (3^n, 3^n) matrix of ``rotate_tensor`` on flattened tensors: R kron R kron ... kron R."""
    r = np.asarray(rotation, dtype=float)
    m = np.ones((1, 1))
    for _ in range(ttype.order):
        m = np.kron(m, r)
    if ttype.axial:
        m = m * np.linalg.det(r)
    return m


def kron_powers(rotations: np.ndarray, k: int) -> np.ndarray:
    """(n, 3^k, 3^k): R kron ... kron R (k factors) of each of ``rotations`` (n, 3, 3)."""
    rots = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
    n = len(rots)
    m = np.ones((n, 1, 1))
    for _ in range(k):
        m = (m[:, :, None, :, None] * rots[:, None, :, None, :]).reshape(n, m.shape[1] * 3, m.shape[2] * 3)
    return m


def group_action_matrices(rotations: np.ndarray, ttype: TensorType) -> np.ndarray:
    """(n_r, 3^n, 3^n): tensor_action_matrix of every rotation in (n_r, 3, 3), in one batch."""
    rots = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
    m = kron_powers(rots, ttype.order)
    if ttype.axial:
        m = m * np.linalg.det(rots)[:, None, None]
    return m


def random_orthogonal(rng: np.random.Generator | int | None = None, improper: bool | None = None) -> np.ndarray:
    """A Haar-random 3x3 orthogonal matrix; ``improper`` forces det = -1 (True) or +1 (False)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(rng)
    r = Rotation.random(random_state=rng).as_matrix()
    if improper is None:
        improper = bool(rng.integers(2))
    return -r if improper else r
