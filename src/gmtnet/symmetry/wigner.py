"""Wigner matrices of a crystal's point-group rotations in e3nn's real basis, and their group
averages (paper equation 10: the projector onto a point group's invariants in an irrep).

D^(l,p)(R) = p^k D^l(det(R) R), with k = 1 for an improper R; all float64.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from e3nn import o3

from gmtnet.tensors.irreps import float64_default


@lru_cache(maxsize=None)
def _coupling(l: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, (C^T C)^-1 C^T) for C = wigner_3j(l-1, 1, l) flattened to (3(2l-1), 2l+1), float64."""
    with float64_default():
        c = o3.wigner_3j(l - 1, 1, l).reshape(3 * (2 * l - 1), 2 * l + 1).numpy()
    return c, np.linalg.solve(c.T @ c, c.T)


@lru_cache(maxsize=None)
def _recurrence_map(l: int) -> np.ndarray:
    """(9 (2l-1)^2, (2l+1)^2) float64 M with vec D^l = vec(D^(l-1) outer D^1) @ M: the map
    D^l = C_left (D^(l-1) (x) D^1) C written on the products D^(l-1)_ij D^1_km, ordered (i, j, k, m)."""
    c, c_left = _coupling(l)
    a, b = 2 * l - 1, 2 * l + 1
    return np.einsum("pik,jmq->ijkmpq", c_left.reshape(b, a, 3), c.reshape(a, 3, b)).reshape(9 * a * a, b * b)


def wigner_matrices(rotations: np.ndarray, lmax: int) -> list[np.ndarray]:
    """[D^l(R) for l = 0..lmax], each (n_r, 2l+1, 2l+1) float64, in e3nn's real basis, for the
    proper parts det(R) R of ``rotations`` (n_r, 3, 3); parity is applied by the caller.

    D^1 is R itself (e3nn's l = 1 basis is x, y, z) and D^l follows from D^(l-1) (x) D^1 through the
    equivariant Clebsch-Gordan map C: (D^(l-1) (x) D^1) C = C D^l, i.e. D^l = C_left (D^(l-1) (x) D^1) C,
    applied as one matrix product of all rotations' (D^(l-1)_ij D^1_km) products (``_recurrence_map``).
    Exact to rounding, and a few matrix products instead of e3nn's matrix exponentials (the tests
    compare both)."""
    rots = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    n = len(rots)
    d1 = rots * np.sign(np.linalg.det(rots))[:, None, None]  # proper part; e3nn's l = 1 basis is (x, y, z)
    out = [np.ones((n, 1, 1)), d1]
    for l in range(2, lmax + 1):
        products = (out[-1].reshape(n, -1, 1) * d1.reshape(n, 1, 9)).reshape(n, -1)  # [n, (i, j, k, m)]
        out.append((products @ _recurrence_map(l)).reshape(n, 2 * l + 1, 2 * l + 1))
    return out[: lmax + 1]


def averaged_wigner(rotations: np.ndarray, irreps: o3.Irreps, matrices: list | None = None,
                    signs: np.ndarray | None = None) -> dict[tuple[int, int], np.ndarray]:
    """{(l, p): (2l+1, 2l+1) float64 average of D^(l,p)(R) over ``rotations`` (n_r, 3, 3)}.
    ``matrices``: wigner_matrices(rotations, L) already computed, for some L >= irreps' lmax;
    ``signs``: (n_r,) det(R), if known."""
    rots = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    lmax = max((ir.l for _, ir in irreps), default=0)
    d = matrices if matrices is not None and len(matrices) > lmax else wigner_matrices(rots, lmax)
    signs = np.linalg.det(rots) if signs is None else np.asarray(signs)
    return averaged_wigner_groups(np.array([len(rots)]), irreps, d, signs)[0]


def averaged_wigner_groups(counts: np.ndarray, irreps: o3.Irreps, matrices: list,
                           signs: np.ndarray) -> list[dict[tuple[int, int], np.ndarray]]:
    """``averaged_wigner`` of several groups at once: the rotations of group g are the counts[g]
    consecutive rows of ``matrices`` (wigner_matrices of all of them, up to irreps' lmax or higher)
    and ``signs`` (det R). One dict of read-only arrays per group; a group's result does not
    depend on the others."""
    counts = np.asarray(counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    improper = np.asarray(signs) < 0
    averages = {}
    for l, p in {(ir.l, ir.p) for _, ir in irreps}:
        weight = np.where(improper, float(p), 1.0)  # D^(l,p)(R) = p^k D^l(det(R) R), k = 1 if improper
        sums = np.add.reduceat(weight[:, None, None] * matrices[l], starts, axis=0)
        averages[(l, p)] = sums / counts[:, None, None]
        averages[(l, p)].flags.writeable = False  # each group's matrices are read-only views
    return [{key: value[g] for key, value in averages.items()} for g in range(len(counts))]
