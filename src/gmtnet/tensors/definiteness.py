"""Exact definiteness of symmetric matrices: the stability test of elastic and dielectric tensors.

A symmetric matrix A is positive definite when x^T A x > 0 for every x != 0. For an elastic tensor
that is Born stability: its 6x6 Voigt matrix (pymatgen's order, no engineering factors) is
congruent to the Mandel matrix D C D (D = diag(1, 1, 1, sqrt 2, sqrt 2, sqrt 2)), the stiffness
as a quadratic form on strains, so both have the same signs of eigenvalues (Sylvester's law of
inertia) and either can be tested.

``inertia`` counts the positive, zero and negative eigenvalues exactly: every float is a rational
number, and a symmetric LDL^T elimination in rational arithmetic (``fractions.Fraction``) never
rounds. A floating-point eigenvalue solver cannot decide a singular matrix: for the 6x6 integer
labels of the Materials Project, an exactly zero eigenvalue comes out as +-1e-15, with the sign
set by the LAPACK kernel of the machine. The exact count gives the same answer everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Inertia:
    """Numbers of positive, zero and negative eigenvalues of a symmetric matrix."""

    positive: int
    zero: int
    negative: int

    @property
    def positive_definite(self) -> bool:
        return self.zero == 0 and self.negative == 0


def _schur_update(m: list[list[Fraction]], pivots: list[int]) -> list[list[Fraction]]:
    """The Schur complement of the (1x1 or 2x2) pivot block ``pivots`` of the symmetric ``m``."""
    rest = [i for i in range(len(m)) if i not in pivots]
    if len(pivots) == 1:
        (k,) = pivots
        d = m[k][k]
        return [[m[i][j] - m[i][k] * m[k][j] / d for j in rest] for i in rest]
    k, l = pivots
    a, b, c = m[k][k], m[k][l], m[l][l]
    det = a * c - b * b
    inv = ((c / det, -b / det), (-b / det, a / det))  # the pivot block's inverse
    out = []
    for i in rest:
        row = []
        left = (m[i][k] * inv[0][0] + m[i][l] * inv[1][0], m[i][k] * inv[0][1] + m[i][l] * inv[1][1])
        for j in rest:
            row.append(m[i][j] - left[0] * m[k][j] - left[1] * m[l][j])
        out.append(row)
    return out


def inertia(matrix) -> Inertia:
    """Exact inertia of the symmetric part (A + A^T)/2 of a real square matrix (n, n).

    Symmetric elimination in rational arithmetic: a non-zero diagonal pivot d removes one
    eigenvalue of the sign of d; when every remaining diagonal entry is zero but an off-diagonal
    b is not, the 2x2 block [[0, b], [b, 0]] removes one positive and one negative eigenvalue;
    a zero remainder holds only zero eigenvalues. Each step is a congruence, which keeps the
    inertia (Sylvester). Raises ValueError for a non-square or non-finite input.
    """
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"inertia needs a square matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("inertia needs finite entries")
    exact = [[Fraction(float(x)) for x in row] for row in a]
    m = [[(exact[i][j] + exact[j][i]) / 2 for j in range(len(a))] for i in range(len(a))]
    positive = negative = 0
    while m:
        diag = [abs(m[i][i]) for i in range(len(m))]
        k = max(range(len(m)), key=diag.__getitem__)
        if diag[k] != 0:
            if m[k][k] > 0:
                positive += 1
            else:
                negative += 1
            m = _schur_update(m, [k])
            continue
        off = [(abs(m[i][j]), i, j) for i in range(len(m)) for j in range(i + 1, len(m)) if m[i][j] != 0]
        if not off:
            break  # a zero block: all its eigenvalues are zero
        _, i, j = max(off)
        positive += 1
        negative += 1
        m = _schur_update(m, [i, j])
    return Inertia(positive, len(a) - positive - negative, negative)


#: Relative margin (of the spectral norm) beyond which a floating-point eigenvalue's sign is
#: certain: a backward-stable symmetric eigensolver errs by a small multiple of n eps |A|_2 (about
#: 1e-15 |A|_2 here), 10^5 times below it.
CERTAIN_SIGN_MARGIN = 1e-10


def is_positive_definite(matrix) -> bool:
    """True when the symmetric part of ``matrix`` (n, n) is positive definite (exact test).

    The floating-point eigenvalues decide when the smallest lies farther than
    ``CERTAIN_SIGN_MARGIN`` |A|_2 from 0, where rounding cannot change its sign; the rational
    elimination of ``inertia`` decides the rest (singular and nearly singular matrices)."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.size and np.all(np.isfinite(a)):
        eigenvalues = np.linalg.eigvalsh(0.5 * (a + a.T))
        margin = CERTAIN_SIGN_MARGIN * np.abs(eigenvalues).max()
        if eigenvalues[0] > margin:
            return True
        if eigenvalues[0] < -margin:
            return False
    return inertia(a).positive_definite


__all__ = ["Inertia", "inertia", "is_positive_definite"]
