"""The point-group data of one crystal that the models read: a typed, immutable record computed in
preprocessing (``point_group_data``, many crystals in one call) and only concatenated into
batches (``gmtnet.model.batch.collate``).

Every field is a pure function of the crystal's Cartesian point group (its graph's ``rotations``)
and, for the orbit data, of the graph's orbit map and edges. Which parts a record holds is what
the models that read it need (``PointGroupNeeds``): the Reynolds projector of a tensor type, the
averaged Wigner matrices of feature irreps, the orbit data up to a highest l. A record is never
changed: asking for more parts gives a new record holding the old parts and the new ones.
Records are not written to disk (graph files store rotations and orbit maps).

The graphs given to ``point_group_data`` are read through these attributes (``CrystalGraph``'s):
``spacegroup_number``, ``rotations`` ((n_r, 3, 3) Cartesian point group or None), ``orbit_rep``, ``orbit_rotation``,
``site_rotations``, ``edge_multiplicity`` (the orbit map of ``gmtnet.symmetry.orbits`` or None),
``edge_src``, ``edge_dst``, ``edge_vec``, ``edge_radius``, ``n_atoms``, ``n_edges`` and
``point_group`` (the record already attached, or None).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from e3nn import o3

from gmtnet.symmetry.constraints import SymmetryConstraints, reynolds_projectors
from gmtnet.symmetry.point_group import crystal_system_from_number
from gmtnet.symmetry.wigner import averaged_wigner_groups, wigner_matrices
from gmtnet.tensors.tensor_type import TensorType
from gmtnet.utils.arrays import concat_present

_EMPTY: Mapping = MappingProxyType({})


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    """``array`` made read-only (a view; the data is shared), or None."""
    if array is None:
        return None
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def _frozen_mapping(items: Mapping) -> Mapping:
    return MappingProxyType(dict(items))


@lru_cache(maxsize=None)
def irreps_key(irreps: o3.Irreps) -> str:
    """The key of a record's averaged Wigner matrices for ``irreps`` (cached: writing an Irreps
    as text costs more than the lookup)."""
    return str(irreps)


@dataclass(frozen=True)
class PointGroupNeeds:
    """What a model reads from a crystal's record.

    Attributes:
        ttype: tensor type whose forced pattern and Reynolds projector it needs, or None.
        irreps: e3nn Irreps of the features it averages over the point group, or None.
        orbit_lmax: highest l of the features it rotates between symmetry-equivalent atoms
            (it runs on orbit batches), or None.
    """

    ttype: TensorType | None = None
    irreps: o3.Irreps | None = None
    orbit_lmax: int | None = None

    @property
    def wigner_lmax(self) -> int:
        """The highest l of the rotations' Wigner matrices these parts are built from (-1: none)."""
        return max(-1 if self.orbit_lmax is None else self.orbit_lmax, -1 if self.irreps is None else self.irreps.lmax)


@dataclass(frozen=True)
class OrbitArrays:
    """A crystal's (or a batch's) atoms grouped by orbit, with indices within it. N atoms, M
    representatives, E kept edges (one per edge class into each representative).

    Attributes:
        reps: (M,) int64 atom index of each representative.
        node_rep: (N,) int64 index into ``reps`` of each atom's representative.
        wigner: (D^l (N, 2l+1, 2l+1), l = 0..lmax) of the proper part of each atom's orbit rotation.
        sign: (N,) float64 det of that rotation (+1 or -1).
        edge_src: (E,) int64 neighbour atom; edge_dst: (E,) int64 index into ``reps``.
        edge_vec: (E, 3) float64 Angstrom; edge_weight: (E,) float64 size of each edge's class.
        edge_radius: (E,) float64 soft radius of each edge's centre (smooth graphs) or None.
        site_projectors: {(l, p): (M, 2l+1, 2l+1)} mean of D^(l,p) over each representative's
            site-symmetry group, for every (l, p) up to lmax but even scalars.
    """

    reps: np.ndarray
    node_rep: np.ndarray
    wigner: tuple
    sign: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_vec: np.ndarray
    edge_weight: np.ndarray
    edge_radius: np.ndarray | None
    site_projectors: Mapping

    @property
    def n_atoms(self) -> int:
        return len(self.node_rep)

    @property
    def n_reps(self) -> int:
        return len(self.reps)

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)

    @staticmethod
    def concatenate(parts: Sequence[OrbitArrays]) -> OrbitArrays:
        """The orbit arrays of crystals taken as one batch, in order (indices offset)."""
        cat = np.concatenate
        sizes = np.array([p.n_atoms for p in parts])
        n_reps = np.array([p.n_reps for p in parts])
        n_edges = np.array([p.n_edges for p in parts])
        atom_offsets, rep_offsets = np.cumsum(sizes) - sizes, np.cumsum(n_reps) - n_reps
        return OrbitArrays(
            reps=cat([p.reps for p in parts]) + np.repeat(atom_offsets, n_reps),
            node_rep=cat([p.node_rep for p in parts]) + np.repeat(rep_offsets, sizes),
            wigner=tuple(cat([p.wigner[l] for p in parts]) for l in range(len(parts[0].wigner))),
            sign=cat([p.sign for p in parts]),
            edge_src=cat([p.edge_src for p in parts]) + np.repeat(atom_offsets, n_edges),
            edge_dst=cat([p.edge_dst for p in parts]) + np.repeat(rep_offsets, n_edges),
            edge_vec=cat([p.edge_vec for p in parts]),
            edge_weight=cat([p.edge_weight for p in parts]),
            edge_radius=concat_present([p.edge_radius for p in parts]),
            site_projectors={k: cat([p.site_projectors[k] for p in parts]) for k in parts[0].site_projectors},
        )


@dataclass(frozen=True)
class PointGroupData:
    """The point-group data of one crystal (immutable; arrays read-only).

    Attributes:
        spacegroup_number: international number (1-230) of the crystal's space group, or None.
        rotations: (n_r, 3, 3) float64 Cartesian point group, or None for a graph built without
            symmetry (then only orbit data, with every atom its own representative).
        constraints: {tensor type name: SymmetryConstraints} (forced pattern, Reynolds projector).
        rotation_wigner: (D^l (n_r, 2l+1, 2l+1), l = 0..L) of every rotation; empty if none needed.
        rotation_sign: (n_r,) float64 det R of every rotation, or None.
        averaged_wigner: {irreps_key(irreps): {(l, p): (2l+1, 2l+1)}} group averages of
            D^(l,p) for the features of those irreps.
        orbits: {lmax: OrbitArrays of the crystal alone}.
    """

    spacegroup_number: int | None = None
    rotations: np.ndarray | None = None
    constraints: Mapping = field(default_factory=lambda: _EMPTY)
    rotation_wigner: tuple = ()
    rotation_sign: np.ndarray | None = None
    averaged_wigner: Mapping = field(default_factory=lambda: _EMPTY)
    orbits: Mapping = field(default_factory=lambda: _EMPTY)

    @property
    def wigner_lmax(self) -> int:
        """The highest l of ``rotation_wigner`` (-1 when not computed)."""
        return len(self.rotation_wigner) - 1

    @property
    def crystal_system(self) -> str | None:
        """The crystal system of the space group (one of CRYSTAL_SYSTEMS), or None."""
        return None if self.spacegroup_number is None else crystal_system_from_number(self.spacegroup_number)

    def missing(self, needs: PointGroupNeeds) -> list[str]:
        """The parts of ``needs`` this record lacks, named (empty: it holds them all)."""
        out = []
        if self.rotations is not None:
            if needs.ttype is not None and needs.ttype.name not in self.constraints:
                out.append(f"the {needs.ttype.name} projector")
            if needs.irreps is not None and irreps_key(needs.irreps) not in self.averaged_wigner:
                out.append(f"the averaged Wigner matrices of {needs.irreps}")
        if needs.orbit_lmax is not None and needs.orbit_lmax not in self.orbits:
            out.append(f"the orbit data up to l = {needs.orbit_lmax}")
        return out

    def constraints_of(self, ttype: TensorType) -> SymmetryConstraints:
        """The crystal's SymmetryConstraints for ``ttype``; ValueError if the record lacks them."""
        if self.rotations is None:
            raise ValueError("graph has no point group (built without symmetry): no symmetry constraints")
        if ttype.name not in self.constraints:
            raise ValueError(f"the crystal's point-group data lacks the {ttype.name} projector "
                             "(prepare the graph for a model of that task first)")
        return self.constraints[ttype.name]


def _orbit_arrays(graphs: Sequence, wigner: Sequence, signs: Sequence, lmax: int) -> list[OrbitArrays]:
    """The OrbitArrays of each graph (its own indices), computed for all of them together.

    ``wigner[k]`` / ``signs[k]``: the rotations' Wigner matrices (up to lmax or higher) and
    det R of graph k when it has an orbit map (else ignored). A graph without an orbit map gets
    every atom as its own representative, with trivial site groups; a graph's arrays do not
    depend on the others'."""
    mapped = [g.orbit_rep is not None for g in graphs]
    cat = np.concatenate
    sizes = np.array([g.n_atoms for g in graphs])
    atom_start = np.cumsum(sizes) - sizes
    # every mapped graph's rotations, then one identity for the atoms of unmapped graphs
    n_rot = np.array([len(g.rotations) if m else 0 for g, m in zip(graphs, mapped)])
    rot_start, identity = np.cumsum(n_rot) - n_rot, int(n_rot.sum())
    d = [cat([w[l] for w, m in zip(wigner, mapped) if m] + [np.eye(2 * l + 1)[None]]) for l in range(lmax + 1)]
    det_sign = cat([s for s, m in zip(signs, mapped) if m] + [np.ones(1)])
    rep = cat([(g.orbit_rep if m else np.arange(g.n_atoms)) + a for g, m, a in zip(graphs, mapped, atom_start)])
    rotation = cat([g.orbit_rotation + r if m else np.full(g.n_atoms, identity)
                    for g, m, r in zip(graphs, mapped, rot_start)])
    is_rep = rep == np.arange(len(rep))
    reps = np.flatnonzero(is_rep)
    n_reps = np.bincount(np.repeat(np.arange(len(graphs)), sizes)[reps], minlength=len(graphs))
    rep_start = np.cumsum(n_reps) - n_reps
    position = np.cumsum(is_rep) - 1  # of a representative among all representatives
    # site projectors: each representative's site rotations (the identity where there is no site data)
    pairs_rep, pairs_rot = [], []
    for k, (g, m) in enumerate(zip(graphs, mapped)):
        local = reps[rep_start[k]:rep_start[k] + n_reps[k]] - atom_start[k]
        if m and g.site_rotations is not None:
            rows, cols = np.nonzero(g.site_rotations[local])
            pairs_rep.append(rows + rep_start[k])
            pairs_rot.append(cols + rot_start[k])
        else:
            pairs_rep.append(np.arange(n_reps[k]) + rep_start[k])
            pairs_rot.append(np.full(n_reps[k], identity))
    pairs_rep, pairs_rot = cat(pairs_rep), cat(pairs_rot)  # sorted by representative
    counts = np.bincount(pairs_rep, minlength=len(reps))
    starts = np.cumsum(counts) - counts
    projectors = {}
    for l in range(lmax + 1):
        for p in (1, -1):
            if (l, p) == (0, 1):  # even scalars are left as they are
                continue
            values = d[l][pairs_rot]
            if p == -1:
                values = values * det_sign[pairs_rot][:, None, None]
            projectors[(l, p)] = np.add.reduceat(values, starts, axis=0) / counts[:, None, None]
    # edges into representatives, one per class (multiplicity 0: a class's other members)
    n_edges = np.array([g.n_edges for g in graphs])
    src = cat([g.edge_src for g in graphs]) + np.repeat(atom_start, n_edges)
    dst = cat([g.edge_dst for g in graphs]) + np.repeat(atom_start, n_edges)
    multiplicity = cat([g.edge_multiplicity if m and g.edge_multiplicity is not None
                        else np.ones(g.n_edges, dtype=np.int64) for g, m in zip(graphs, mapped)])
    keep = is_rep[dst] & (multiplicity > 0)
    radius = concat_present([g.edge_radius for g in graphs])
    radius = None if radius is None else radius[keep]
    edge_vec = cat([g.edge_vec for g in graphs])[keep]
    edge_src, edge_dst, weight = src[keep], position[dst[keep]], multiplicity[keep].astype(np.float64)
    node_rep, wig, sign = position[rep], [x[rotation] for x in d], det_sign[rotation]
    # read-only once here: every crystal's arrays below are views (or offsets) of these
    edge_vec, weight, sign, radius = _frozen(edge_vec), _frozen(weight), _frozen(sign), _frozen(radius)
    wig = [_frozen(w) for w in wig]
    projectors = {key: _frozen(value) for key, value in projectors.items()}
    kept_per_graph = np.bincount(np.repeat(np.arange(len(graphs)), n_edges)[keep], minlength=len(graphs))
    edge_start = np.cumsum(kept_per_graph) - kept_per_graph
    out = []
    for k in range(len(graphs)):
        a0, r0, e0 = int(atom_start[k]), int(rep_start[k]), int(edge_start[k])
        atoms, rs = slice(a0, a0 + int(sizes[k])), slice(r0, r0 + int(n_reps[k]))
        edges = slice(e0, e0 + int(kept_per_graph[k]))
        out.append(OrbitArrays(
            reps=_frozen(reps[rs] - a0), node_rep=_frozen(node_rep[atoms] - r0), wigner=tuple(w[atoms] for w in wig),
            sign=sign[atoms], edge_src=_frozen(edge_src[edges] - a0), edge_dst=_frozen(edge_dst[edges] - r0),
            edge_vec=edge_vec[edges], edge_weight=weight[edges],
            edge_radius=None if radius is None else radius[edges],
            site_projectors=_frozen_mapping({key: value[rs] for key, value in projectors.items()})))
    return out


def point_group_data(graphs: Sequence, needs: PointGroupNeeds) -> list[PointGroupData]:
    """For each graph, a record holding what its ``point_group`` holds and ``needs``; each part
    is computed for all the graphs lacking it in one call (the rotations' Wigner matrices once,
    up to the highest l needed). A graph whose record already holds everything gets it back."""
    old = [g.point_group if g.point_group is not None
           else PointGroupData(spacegroup_number=g.spacegroup_number, rotations=_frozen(g.rotations)) for g in graphs]
    new: list[dict] = [{} for _ in graphs]  # the fields of each record that change

    def current(k: int, name: str):
        return new[k][name] if name in new[k] else getattr(old[k], name)

    def add(k: int, name: str, key, value) -> None:
        new[k][name] = _frozen_mapping({**current(k, name), key: value})

    symmetric = [k for k, g in enumerate(graphs) if g.rotations is not None]
    lmax = needs.wigner_lmax
    todo = [k for k in symmetric if old[k].wigner_lmax < lmax]
    if todo:
        rotations = np.concatenate([np.asarray(graphs[k].rotations, dtype=np.float64).reshape(-1, 3, 3) for k in todo])
        matrices = [_frozen(d) for d in wigner_matrices(rotations, lmax)]
        signs = _frozen(np.where(np.linalg.det(rotations) < 0, -1.0, 1.0))
        ends = np.cumsum([len(graphs[k].rotations) for k in todo]).tolist()
        for k, start, end in zip(todo, [0] + ends[:-1], ends):  # read-only views of each crystal's rows
            new[k]["rotation_wigner"] = tuple(d[start:end] for d in matrices)
            new[k]["rotation_sign"] = signs[start:end]
    if needs.ttype is not None:
        name = needs.ttype.name
        todo = [k for k in symmetric if name not in old[k].constraints]
        rotations = [np.asarray(graphs[k].rotations, dtype=float).reshape(-1, 3, 3) for k in todo]
        for k, rots, projector in zip(todo, rotations, reynolds_projectors(rotations, needs.ttype) if todo else []):
            add(k, "constraints", name, SymmetryConstraints(ttype=needs.ttype, rotations=rots, projector=projector))
    if needs.orbit_lmax is not None:
        lmax = needs.orbit_lmax
        todo = [k for k in range(len(graphs)) if lmax not in old[k].orbits]
        if todo:
            made = _orbit_arrays([graphs[k] for k in todo], [current(k, "rotation_wigner") for k in todo],
                                 [current(k, "rotation_sign") for k in todo], lmax)
            for k, arrays in zip(todo, made):
                add(k, "orbits", lmax, arrays)
    if needs.irreps is not None:
        key = irreps_key(needs.irreps)
        todo = [k for k in symmetric if key not in old[k].averaged_wigner]
        if todo:
            matrices = [np.concatenate([current(k, "rotation_wigner")[l] for k in todo])
                        for l in range(needs.irreps.lmax + 1)]
            signs = np.concatenate([current(k, "rotation_sign") for k in todo])
            counts = np.array([len(graphs[k].rotations) for k in todo])
            for k, average in zip(todo, averaged_wigner_groups(counts, needs.irreps, matrices, signs)):
                add(k, "averaged_wigner", key, _frozen_mapping(average))
    return [dataclasses.replace(r, **fields) if fields else r for r, fields in zip(old, new)]
