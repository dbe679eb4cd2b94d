"""Reynolds projector of a point group on a tensor type, and the forced zeros and equalities.

For a point group {R_1..R_n} and a tensor type with index symmetrizer S (orthogonal projector on
the type's subspace), the Reynolds operator on flattened tensors is

    P = (1/n) sum_i rho(R_i) S,      rho(R) = R kron ... kron R   (times det R if axial).

P is a projector onto the tensors that obey both the index symmetry and the point group. A
component c (an orbit of index tuples under the index symmetry, e.g. C_1122 = C_2211 = ...) is
forced to zero iff its row of P vanishes, and components a, b are forced equal (opposite) iff
their rows are equal (opposite): every invariant tensor is P x for some x. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from gmtnet.tensors.tensor_type import TensorType
from gmtnet.tensors.transform import group_action_matrices
from gmtnet.tensors.voigt import voigt_index

_ROW_TOL = 1e-8


def reynolds_projector(rotations: np.ndarray, ttype: TensorType) -> np.ndarray:
    """(3^n, 3^n) float64 projector onto tensors of ``ttype`` invariant under ``rotations``."""
    rots = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
    return group_action_matrices(rots, ttype).mean(axis=0) @ ttype.index_symmetrizer


@lru_cache(maxsize=None)
def _components(ttype: TensorType) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Orbits of flat indices under the index symmetry: (representative, members, member signs);
    a property of the tensor type alone, computed once per type."""
    s = ttype.index_symmetrizer
    seen: set[int] = set()
    comps = []
    for flat in range(s.shape[0]):
        if flat in seen or np.abs(s[flat, flat]) < _ROW_TOL:
            continue
        members = np.flatnonzero(np.abs(s[flat]) > _ROW_TOL)
        seen.update(int(m) for m in members)
        comps.append((flat, members, np.sign(s[flat, members])))
    return comps


def component_label(ttype: TensorType, index: tuple[int, ...]) -> str:
    """Human-readable name of a component: matrix indices for rank 2 (eps12), Voigt indices
    otherwise (e15, C44), Cartesian letters for a type without Voigt form (T_xyz)."""
    if ttype.voigt_pairs is None:
        return f"{ttype.symbol}_" + "".join("xyz"[i] for i in index)
    digits = index if ttype.order == 2 else voigt_index(ttype, index)
    return ttype.symbol + "".join(str(d + 1) for d in digits)


@dataclass
class SymmetryConstraints:
    """Forced pattern of one tensor type under one point group.

    Attributes:
        ttype: the tensor type.
        rotations: (n_r, 3, 3) Cartesian point-group matrices used.
        projector: (3^n, 3^n) Reynolds projector (float64).
    """

    ttype: TensorType
    rotations: np.ndarray
    projector: np.ndarray

    @classmethod
    def from_rotations(cls, rotations: np.ndarray, ttype: TensorType) -> "SymmetryConstraints":
        rots = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
        return cls(ttype=ttype, rotations=rots, projector=reynolds_projector(rots, ttype))

    @classmethod
    def from_structure(cls, structure, ttype: TensorType, symprec: float = 1e-3) -> "SymmetryConstraints":
        from gmtnet.symmetry.point_group import analyze_symmetry

        return cls.from_rotations(analyze_symmetry(structure, symprec).rotations, ttype)

    # ---- pattern -------------------------------------------------------------------------
    @cached_property
    def components(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        return _components(self.ttype)

    def _index(self, flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.ttype.shape))

    @cached_property
    def _pattern(self) -> tuple[list[int], list[list[tuple[int, int]]]]:
        rows = self.projector[[rep for rep, _, _ in self.components]]
        # [c, c']: rows equal / opposite (all pairs at once; the grouping below only looks them up)
        same = np.abs(rows[:, None, :] - rows[None, :, :]).max(axis=2) < _ROW_TOL
        opposite = np.abs(rows[:, None, :] + rows[None, :, :]).max(axis=2) < _ROW_TOL
        zero = np.abs(rows).max(axis=1) < _ROW_TOL
        zeros, groups = [], []
        for c in range(len(rows)):
            if zero[c]:
                zeros.append(c)
                continue
            for group in groups:
                ref = group[0][0]
                if same[c, ref]:
                    group.append((c, 1))
                    break
                if opposite[c, ref]:
                    group.append((c, -1))
                    break
            else:
                groups.append([(c, 1)])
        return zeros, groups

    @cached_property
    def _snap_plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index arrays of ``project``'s snapping: for every (group member, sign) the flat index
        of its representative and its group; for every tensor entry of a member its group and sign."""
        reps, rep_signs, rep_groups, entries, entry_groups, entry_signs = [], [], [], [], [], []
        for g, group in enumerate(self._pattern[1]):
            for c, sign in group:
                rep, members, signs = self.components[c]
                reps.append(rep)
                rep_signs.append(sign)
                rep_groups.append(g)
                entries += list(members)
                entry_groups += [g] * len(members)
                entry_signs += list(sign * signs)
        as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
        return (as_int(reps), np.asarray(rep_signs, dtype=float), as_int(rep_groups), as_int(entries),
                as_int(entry_groups), np.asarray(entry_signs, dtype=float))

    @property
    def zero_components(self) -> list[tuple[int, ...]]:
        """Representative full indices of the components forced to zero."""
        return [self._index(self.components[c][0]) for c in self._pattern[0]]

    @property
    def equal_groups(self) -> list[list[tuple[tuple[int, ...], int]]]:
        """Groups of components forced equal up to sign: [(index, sign), ...], first sign +1.

        Only groups of two or more: equalities beyond the tensor type's own index symmetry.
        """
        return [
            [(self._index(self.components[c][0]), s) for c, s in group]
            for group in self._pattern[1]
            if len(group) > 1
        ]

    @property
    def equalities(self) -> list[tuple[tuple[int, ...], tuple[int, ...], int]]:
        """Pairs (a, b, sign) meaning T[b] == sign * T[a], a being each group's first member."""
        return [(g[0][0], idx, s) for g in self.equal_groups for idx, s in g[1:]]

    @property
    def n_independent(self) -> int:
        """Number of independent constants: the rank (= trace) of the projector."""
        return int(round(float(np.trace(self.projector))))

    def zero_mask(self) -> np.ndarray:
        """Boolean array of the full tensor shape, True where the symmetry forces a zero."""
        mask = np.zeros(3**self.ttype.order, dtype=bool)
        for c in self._pattern[0]:
            mask[self.components[c][1]] = True
        return mask.reshape(self.ttype.shape)

    def component_name(self, index: tuple[int, ...]) -> str:
        """Name of the component holding full index ``index``: its smallest Voigt-style label
        over the index-symmetry orbit (C56, not C65)."""
        flat = int(np.ravel_multi_index(index, self.ttype.shape))
        for _, members, _ in self.components:
            if flat in members:
                return min(component_label(self.ttype, self._index(m)) for m in members)
        raise ValueError(f"{index} is not a component of {self.ttype.name}")

    def describe(self) -> dict:
        """Readable summary, sorted by component name: zero components, and equality groups with
        signs relative to each group's first member."""
        def _key(name: str) -> tuple[int, str]:
            return (len(name), name)

        groups = []
        for group in self.equal_groups:
            named = sorted(((self.component_name(i), s) for i, s in group), key=lambda x: _key(x[0]))
            flip = named[0][1]
            groups.append([("" if s * flip > 0 else "-") + n for n, s in named])
        return {
            "n_independent": self.n_independent,
            "zeros": sorted((self.component_name(i) for i in self.zero_components), key=_key),
            "equal_groups": sorted(groups, key=lambda g: _key(g[0])),
        }

    # ---- projection ----------------------------------------------------------------------
    def project(self, tensor: np.ndarray, exact: bool = True) -> np.ndarray:
        """Project a tensor (..., 3, ..., 3) onto the invariant subspace, in float64.

        With ``exact`` the result is snapped so that forced zeros are exactly 0.0, forced
        equalities hold bit for bit, and the index symmetry holds bit for bit.
        """
        t = np.asarray(tensor, dtype=np.float64)
        batch = t.shape[: t.ndim - self.ttype.order]
        flat = t.reshape(*batch, -1) @ self.projector.T
        if not exact:
            return flat.reshape(*batch, *self.ttype.shape)
        out = np.zeros_like(flat)  # forced-zero components stay exactly 0.0
        reps, rep_signs, rep_groups, entries, entry_groups, entry_signs = self._snap_plan
        n_groups = len(self._pattern[1])
        if n_groups:
            # each group's value: the mean of its members' signed projected values (one number per
            # group, so members equal or opposite bit for bit), written to every entry of the group
            sizes = np.bincount(rep_groups, minlength=n_groups)  # members are listed group by group
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            values = np.add.reduceat(flat[..., reps] * rep_signs, starts, axis=-1) / sizes
            out[..., entries] = values[..., entry_groups] * entry_signs
        return out.reshape(*batch, *self.ttype.shape)
