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
from typing import NamedTuple

import numpy as np

from gmtnet.symmetry.point_group import crystal_symmetry
from gmtnet.tensors.tensor_type import TensorType
from gmtnet.tensors.transform import kron_powers
from gmtnet.tensors.voigt import voigt_index

_ROW_TOL = 1e-8


def reynolds_projector(rotations: np.ndarray, ttype: TensorType) -> np.ndarray:
    """(3^n, 3^n) float64 projector onto tensors of ``ttype`` invariant under ``rotations``."""
    return reynolds_projectors([rotations], ttype)[0]


def reynolds_projectors(rotation_sets: list[np.ndarray], ttype: TensorType) -> list[np.ndarray]:
    """``reynolds_projector`` of each group in ``rotation_sets`` (each (n_r, 3, 3)).

    The group average of rho(R) = A(R) kron B(R), with A, B the Kronecker powers of R of the
    first k1 = n // 2 and the other k2 indices, is one matrix product per group:
    mean_R A[a, c] B[b, d] = (A_flat^T B_flat)[(a, c), (b, d)] / n_r, so the (3^n, 3^n) action
    matrices are never formed (for elastic 9x9 instead of 81x81 per rotation). A group's result
    does not depend on which other groups it is computed with."""
    sets = [np.asarray(r, dtype=float).reshape(-1, 3, 3) for r in rotation_sets]
    if not sets:
        return []
    k2 = ttype.order // 2
    k1 = ttype.order - k2
    d1, d2 = 3**k1, 3**k2
    rots = np.concatenate(sets)
    first = kron_powers(rots, k1)
    if ttype.axial:
        first = first * np.linalg.det(rots)[:, None, None]
    first = first.reshape(len(rots), d1 * d1)
    second = kron_powers(rots, k2).reshape(len(rots), d2 * d2)
    symmetrizer = ttype.index_symmetrizer
    out = []
    start = 0
    for r in sets:
        stop = start + len(r)
        mean = (first[start:stop].T @ second[start:stop]) / len(r)  # [(a, c), (b, d)]
        action = mean.reshape(d1, d1, d2, d2).transpose(0, 2, 1, 3).reshape(d1 * d2, d1 * d2)
        out.append(action @ symmetrizer)
        start = stop
    return out


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


@lru_cache(maxsize=None)
def _component_arrays(ttype: TensorType) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_components`` as arrays: (representative (C,), start (C,) and length (C,) of each
    component's members in the next two, members concatenated, their signs concatenated)."""
    comps = _components(ttype)
    lengths = np.array([len(m) for _, m, _ in comps], dtype=np.int64)
    return (np.array([r for r, _, _ in comps], dtype=np.int64), np.cumsum(lengths) - lengths, lengths,
            np.concatenate([m for _, m, _ in comps]).astype(np.int64),
            np.concatenate([s for _, _, s in comps]).astype(float))


def component_label(ttype: TensorType, index: tuple[int, ...]) -> str:
    """Human-readable name of a component: matrix indices for rank 2 (eps12), Voigt indices
    otherwise (e15, C44), Cartesian letters for a type without Voigt form (T_xyz)."""
    if ttype.voigt_pairs is None:
        return f"{ttype.symbol}_" + "".join("xyz"[i] for i in index)
    digits = index if ttype.order == 2 else voigt_index(ttype, index)
    return ttype.symbol + "".join(str(d + 1) for d in digits)


@lru_cache(maxsize=None)
def _component_names(ttype: TensorType) -> tuple[str, ...]:
    """Each component's name (its smallest label over its index-symmetry orbit: C56, not C65), in
    the order of ``_components``; a property of the tensor type alone."""
    return tuple(min(component_label(ttype, tuple(int(i) for i in np.unravel_index(m, ttype.shape)))
                     for m in members) for _, members, _ in _components(ttype))


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
        """The constraints of the crystal's whole point group (``crystal_symmetry``: also for a
        supercell whose lattice lacks some of its rotations)."""
        return cls.from_rotations(crystal_symmetry(structure, symprec)[1].rotations, ttype)

    # ---- pattern -------------------------------------------------------------------------
    @cached_property
    def components(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        return _components(self.ttype)

    def _index(self, flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.ttype.shape))

    @cached_property
    def _pattern(self) -> tuple[list[int], list[list[tuple[int, int]]]]:
        p = self._pattern_arrays
        cuts = np.flatnonzero(np.diff(p.group)) + 1
        groups = [list(zip(m.tolist(), g.tolist())) for m, g in zip(np.split(p.members, cuts), np.split(p.signs, cuts))]
        return p.zeros.tolist(), groups if len(p.members) else []

    @cached_property
    def _pattern_arrays(self) -> "_Pattern":
        return _patterns([self])[0]

    @staticmethod
    def compute_patterns(constraints: list[SymmetryConstraints]) -> None:
        """Compute the forced patterns of all ``constraints`` that lack theirs in one call (the
        same as computing each alone, several times faster for many crystals)."""
        todo = [c for c in constraints if "_pattern_arrays" not in vars(c)]  # cached_property not yet set
        for c, pattern in zip(todo, _patterns(todo)):
            vars(c)["_pattern_arrays"] = pattern

    @cached_property
    def _snap_plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index arrays of ``project``'s snapping: for every (group member, sign) the flat index
        of its representative and its group; for every tensor entry of a member its group and sign."""
        p = self._pattern_arrays
        return _snap_plan_of(self.ttype, p.members, p.signs, p.group)

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
        for (_, members, _), name in zip(self.components, _component_names(self.ttype)):
            if flat in members:
                return name
        raise ValueError(f"{index} is not a component of {self.ttype.name}")

    @cached_property
    def independent_components(self) -> list[str]:
        """Names of a set of independent components: as many as the symmetry leaves free
        (``n_independent``), picked in name order (C11 before C66) among the components whose
        projector rows are linearly independent of those already picked (residual norm above
        1e-8 after projecting out their span), so that relations such as C66 = (C11 - C12)/2 are
        respected."""
        names = _component_names(self.ttype)
        order = sorted(range(len(names)), key=lambda c: (len(names[c]), names[c]))
        basis: list[np.ndarray] = []  # orthonormal rows spanning the picked components' rows
        chosen = []
        for c in order:
            if len(chosen) == self.n_independent:
                break
            residual = self.projector[self.components[c][0]].copy()
            if np.abs(residual).max() < _ROW_TOL:
                continue
            for _ in range(2):  # Gram-Schmidt, twice for a residual orthogonal to working precision
                for q in basis:
                    residual -= (q @ residual) * q
            norm = np.linalg.norm(residual)
            if norm > _ROW_TOL:
                basis.append(residual / norm)
                chosen.append(names[c])
        return chosen

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
        return _snap(flat, self._snap_plan, self._pattern_arrays.n_groups).reshape(*batch, *self.ttype.shape)


class _Pattern(NamedTuple):
    """A crystal's forced pattern for one tensor type, by component index (``_components``).

    zeros: (z,) components forced to zero. members, signs, group: (m,) the components of the
    equality groups listed group by group, each with its sign relative to its group's first member
    and its group's index; n_groups: how many groups (a group of one is a free component)."""

    zeros: np.ndarray
    members: np.ndarray
    signs: np.ndarray
    group: np.ndarray
    n_groups: int


_PATTERN_BLOCK = 16  # crystals whose projector rows are compared at once in _patterns


def _patterns(constraints: list[SymmetryConstraints]) -> list[_Pattern]:
    """The _Pattern of each constraint (all of one tensor type), the row comparisons of several
    crystals done together."""
    out = []
    reps = _component_arrays(constraints[0].ttype)[0] if constraints else None
    for lo in range(0, len(constraints), _PATTERN_BLOCK):
        rows = np.stack([c.projector for c in constraints[lo:lo + _PATTERN_BLOCK]])[:, reps]  # [b, C, 3^n]
        # [b, c, c']: rows equal / opposite (all pairs at once)
        same = np.abs(rows[:, :, None, :] - rows[:, None, :, :]).max(axis=3) < _ROW_TOL
        opposite = np.abs(rows[:, :, None, :] + rows[:, None, :, :]).max(axis=3) < _ROW_TOL
        zero = np.abs(rows).max(axis=2) < _ROW_TOL
        out.extend(_grouped(zero, same, opposite))
    return out


def _grouped(zero: np.ndarray, same: np.ndarray, opposite: np.ndarray) -> list[_Pattern]:
    """``_greedy_groups`` of several crystals at once, zero (b, C), same and opposite (b, C, C).

    Rows equal up to sign are an equivalence, so the greedy groups are its classes: a component's
    group is that of the first component it relates to, which is a group's first member. That holds
    where each component's first relative relates first to itself; a crystal where it does not
    (rows equal within the tolerance but not transitively) is grouped by ``_greedy_groups``."""
    b, c = zero.shape
    live = ~zero
    related = (same | opposite) & live[:, :, None] & live[:, None, :]
    first = related.argmax(axis=2)  # [b, C]: the first component each relates to (itself at the latest)
    consistent = ((np.take_along_axis(first, first, axis=1) == first) | zero).all(axis=1)
    is_first = live & (first == np.arange(c))
    group = np.take_along_axis(np.cumsum(is_first, axis=1) - 1, first, axis=1)  # [b, C]
    sign = np.where(np.take_along_axis(same, first[:, :, None], axis=2)[..., 0], 1, -1)
    crystal, component = np.nonzero(live)
    order = np.lexsort((component, group[crystal, component], crystal))  # crystal, then group, then component
    crystal, component = crystal[order], component[order]
    members, signs, groups = component, sign[crystal, component], group[crystal, component]
    zeros = np.nonzero(zero)[1]
    ends, zero_ends = np.cumsum(live.sum(axis=1)).tolist(), np.cumsum(zero.sum(axis=1)).tolist()
    n_groups = is_first.sum(axis=1).tolist()
    out, start, zero_start = [], 0, 0
    for k, (end, zero_end) in enumerate(zip(ends, zero_ends)):
        if consistent[k]:
            out.append(_Pattern(zeros[zero_start:zero_end], members[start:end], signs[start:end], groups[start:end],
                                n_groups[k]))
        else:
            out.append(_greedy_groups(zero[k], same[k].tolist(), opposite[k].tolist()))
        start, zero_start = end, zero_end
    return out


def _greedy_groups(zero: np.ndarray, same: list, opposite: list) -> _Pattern:
    """One crystal's pattern from its row comparisons: in component order, a component joins the
    first group whose first member's row it equals (+1) or opposes (-1), else starts a group (a
    plain loop over Python lists)."""
    firsts: list[int] = []
    members: list[int] = []
    signs: list[int] = []
    groups: list[int] = []
    for c in np.flatnonzero(~zero).tolist():
        for g, ref in enumerate(firsts):
            if same[c][ref] or opposite[c][ref]:
                members.append(c)
                signs.append(1 if same[c][ref] else -1)
                groups.append(g)
                break
        else:
            members.append(c)
            signs.append(1)
            groups.append(len(firsts))
            firsts.append(c)
    order = np.argsort(groups, kind="stable")  # group by group, members ascending within each
    as_int = lambda x: np.asarray(x, dtype=np.int64)[order]  # noqa: E731
    return _Pattern(np.flatnonzero(zero), as_int(members), as_int(signs), as_int(groups), len(firsts))


def _snap_plan_of(ttype: TensorType, members: np.ndarray, signs: np.ndarray, groups: np.ndarray,
                  offsets: np.ndarray | None = None) -> tuple:
    """``_snap_plan`` from (member components, their signs, their groups) of one crystal or of
    several concatenated, ``offsets`` (one per member, default 0) shifting the flat tensor indices."""
    reps_all, starts, lengths, flat_members, flat_signs = _component_arrays(ttype)
    offsets = np.zeros(len(members), dtype=np.int64) if offsets is None else offsets
    counts = lengths[members]
    first = np.repeat(starts[members], counts)  # each entry's component's first position
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    position = first + within
    return (reps_all[members] + offsets, signs.astype(float), groups, flat_members[position] + np.repeat(offsets, counts),
            np.repeat(groups, counts), np.repeat(signs, counts) * flat_signs[position])


def _snap(flat: np.ndarray, plan: tuple, n_groups: int) -> np.ndarray:
    """Projected flat tensors (..., D) snapped with a ``_snap_plan`` over the last axis: forced
    zeros exactly 0.0, and each group's value the mean of its members' signed values (one number
    per group, so members equal or opposite bit for bit) written to every entry of the group."""
    reps, rep_signs, rep_groups, entries, entry_groups, entry_signs = plan
    out = np.zeros_like(flat)
    if n_groups:
        sizes = np.bincount(rep_groups, minlength=n_groups)  # members are listed group by group
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        values = np.add.reduceat(flat[..., reps] * rep_signs, starts, axis=-1) / sizes
        out[..., entries] = values[..., entry_groups] * entry_signs
    return out


def project_each(constraints: list[SymmetryConstraints], tensors: np.ndarray) -> np.ndarray:
    """(B, 3, ..., 3) float64: tensors[b] projected onto constraints[b]'s invariant subspace and
    snapped as ``SymmetryConstraints.project`` does (forced zeros exactly 0.0, forced equalities
    bit for bit), for a batch of crystals with one call per step instead of one per crystal.
    All constraints must be of one tensor type; ``tensors`` (B, 3, ..., 3)."""
    t = np.asarray(tensors, dtype=np.float64)
    if not len(constraints):
        return t.copy()
    ttype = constraints[0].ttype
    if any(c.ttype != ttype for c in constraints):
        raise ValueError("project_each: all constraints must be of one tensor type")
    b, dim = len(constraints), 3**ttype.order
    projectors = np.stack([c.projector for c in constraints])
    flat = np.matmul(projectors, t.reshape(b, dim, 1))[..., 0].reshape(-1)  # [b * dim]
    SymmetryConstraints.compute_patterns(constraints)
    patterns = [c._pattern_arrays for c in constraints]
    n_groups = np.array([p.n_groups for p in patterns])
    n_members = [len(p.members) for p in patterns]
    cat = np.concatenate
    groups = cat([p.group for p in patterns]) + np.repeat(np.cumsum(n_groups) - n_groups, n_members)
    plan = _snap_plan_of(ttype, cat([p.members for p in patterns]), cat([p.signs for p in patterns]), groups,
                         np.repeat(dim * np.arange(b), n_members))
    return _snap(flat, plan, int(n_groups.sum())).reshape(b, *ttype.shape)
