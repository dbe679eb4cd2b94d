"""Symmetry-informed crystal graphs: every periodic image within each atom's radius.

Two graphs (``build_graph(graph=...)``): "knn", the paper's, described below, and "smooth", whose
edges carry a per-atom soft radius so that the model weighs each message by a smooth envelope
(``gmtnet.graph.cutoff``): the network is then continuous in the positions.

For atom i the radius r_i is the distance to its k-th nearest neighbour among all periodic images
of all atoms (its own images included, itself excluded). Every image j' of every atom j with
|p_j' - p_i| <= r_i + tol gives an edge j -> i with vector v = p_j' - p_i (several images of one
atom give several edges). ``tol`` (1e-5 A) makes symmetry-equivalent neighbours whose distances
differ only by rounding land on the same side of the radius, so equivalent atoms get equivalent
neighbourhoods, which the model's exact symmetry relies on.

The periodic neighbour search is vesin's (cell lists, cutoffs larger than the cell allowed); the
cutoff grows until every atom has k neighbours and its radius (plus tol) fits inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmtnet.graph.cutoff import ENVELOPE_BAND, RADIUS_WIDTH, kth_distances, soft_knn_radius
from gmtnet.symmetry import CrystalSymmetry, PointGroupData, atom_orbits

DEFAULT_K = 16
RADIUS_TOL = 1e-5
GRAPHS = ("knn", "smooth")


@dataclass
class CrystalGraph:
    """A crystal as a graph, in the structure's own Cartesian frame (Angstrom).

    Attributes:
        atomic_numbers: (n_atoms,) int64.
        edge_src: (n_edges,) int64, neighbour atom j of each edge j -> i.
        edge_dst: (n_edges,) int64, centre atom i.
        edge_vec: (n_edges, 3) float64, p_j + shift - p_i.
        edge_shift: (n_edges, 3) int64, lattice translation of the image (fractional units).
        lattice: (3, 3) float64, lattice vectors as rows.
        rotations: (n_r, 3, 3) float64 Cartesian point group (exactly orthogonal), or None.
        spacegroup_number: international number (1-230) of the crystal's space group, or None
            (a graph built without symmetry).
        orbit_rep: (n_atoms,) int64 representative atom of each atom's orbit under the space
            group, or None (see ``gmtnet.symmetry.orbits``).
        orbit_rotation: (n_atoms,) int64 index into ``rotations`` of the rotation carrying the
            representative's neighbourhood onto the atom's (identity for representatives), or None.
        site_rotations: (n_atoms, n_r) bool site-symmetry group of each representative (rows of
            other atoms all False), or None.
        edge_multiplicity: (n_edges,) int64 size of each edge's class under its representative
            centre's site group where the edge is the class's first (0 for the others; 1 for
            edges into other atoms), or None. See ``gmtnet.symmetry.orbits``.
        edge_radius: (n_edges,) float64 soft radius r_i (Angstrom) of each edge's centre atom in a
            "smooth" graph (the envelope's scale, ``gmtnet.graph.cutoff``); None in a "knn" graph.
        point_group: the crystal's immutable point-group record (projectors, Wigner matrices,
            orbit data; ``gmtnet.symmetry.PointGroupData``) attached in preprocessing by
            ``model.prepare_graphs``, or None before; derived from ``rotations`` and the orbit map.
    """

    atomic_numbers: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_vec: np.ndarray
    edge_shift: np.ndarray
    lattice: np.ndarray
    rotations: np.ndarray | None = None
    spacegroup_number: int | None = None
    orbit_rep: np.ndarray | None = None
    orbit_rotation: np.ndarray | None = None
    site_rotations: np.ndarray | None = None
    edge_multiplicity: np.ndarray | None = None
    edge_radius: np.ndarray | None = None
    point_group: PointGroupData | None = field(default=None, repr=False, compare=False)

    @property
    def n_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)


def _neighbour_pairs(lattice: np.ndarray, positions: np.ndarray, k: int, reach):
    """(i, j, shift, dist, kth): every pair of atom i and periodic image of atom j (itself
    excluded) within a cutoff that holds, for every atom, its k nearest neighbours and
    ``reach(kth)`` (Angstrom) beyond its k-th neighbour distance ``kth`` (n,). vesin's cell
    lists; the cutoff grows until that holds."""
    from vesin import NeighborList

    n = len(positions)
    volume = abs(np.linalg.det(lattice))
    cutoff = 1.2 * (3.0 * volume * (k + 1) / (4.0 * np.pi * n)) ** (1.0 / 3.0)
    for _ in range(40):
        i, j, shift, dist = NeighborList(cutoff=cutoff, full_list=True).compute(
            points=positions, box=lattice, periodic=True, quantities="ijSd")
        kth = kth_distances(i, dist, n, k)
        if kth is not None and np.max(reach(kth)) <= cutoff:
            return i, j, shift, dist, kth
        cutoff *= 1.5
    raise RuntimeError("k-NN radius search did not converge")  # pragma: no cover - only for absurd inputs


def _edges(lattice, positions, i, j, shift, keep):
    """(src, dst, vec, shift) of the kept pairs, sorted by centre, then neighbour."""
    src, dst, shift = j[keep].astype(np.int64), i[keep].astype(np.int64), shift[keep].astype(np.int64)
    vec = positions[src] + shift @ lattice - positions[dst]
    order = np.lexsort((src, dst))  # deterministic edge order
    return src[order], dst[order], vec[order], shift[order]


def knn_radius_edges(lattice: np.ndarray, positions: np.ndarray, k: int = DEFAULT_K, tol: float = RADIUS_TOL):
    """Edges of the k-NN radius graph (the paper's).

    Args:
        lattice: (3, 3) lattice vectors as rows, Angstrom.
        positions: (n, 3) Cartesian positions, Angstrom.
        k: neighbour rank that sets each atom's radius.
        tol: added to each radius (Angstrom) so that ties are kept together.

    Returns:
        (src, dst, vec, shift): (E,), (E,), (E, 3) float64, (E, 3) int64, with
        vec = positions[src] + shift @ lattice - positions[dst].
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    i, j, shift, dist, kth = _neighbour_pairs(lattice, positions, k, lambda r: r + tol)
    return _edges(lattice, positions, i, j, shift, dist <= kth[i] + tol)


def smooth_radius_edges(lattice: np.ndarray, positions: np.ndarray, k: int = DEFAULT_K,
                        band: float = ENVELOPE_BAND, width: float = RADIUS_WIDTH, tol: float = RADIUS_TOL):
    """Edges of the smooth graph: every image within (1 + band) r_i + tol of atom i, where r_i is
    its soft k-th neighbour distance (``gmtnet.graph.cutoff``).

    Args as ``knn_radius_edges``; band, width: the envelope's relative band and the radius's
    width (Angstrom).

    Returns:
        (src, dst, vec, shift, radius): as ``knn_radius_edges``, and (E,) float64 r of each
        edge's centre atom.
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    i, j, shift, dist, kth = _neighbour_pairs(lattice, positions, k, lambda r: (1.0 + band) * (r + width) + tol)
    radius = soft_knn_radius(i, dist, len(positions), k, width, kth)
    src, dst, vec, shift = _edges(lattice, positions, i, j, shift, dist <= (1.0 + band) * radius[i] + tol)
    return src, dst, vec, shift, radius[dst]


def build_graph(structure, k: int = DEFAULT_K, symmetry: CrystalSymmetry | None = None,
                orbits: bool = True, graph: str = "knn", band: float = ENVELOPE_BAND,
                width: float = RADIUS_WIDTH) -> CrystalGraph:
    """Graph of a pymatgen Structure; with ``symmetry`` (the structure's CrystalSymmetry,
    ``gmtnet.symmetry.crystal_symmetry``) also its Cartesian point group, and with ``orbits`` its
    atoms' orbits (when the graph passes their check, see ``gmtnet.symmetry.orbits``). Without
    ``symmetry`` the graph has no point group.

    ``graph``: "knn" (the paper's) or "smooth" (``smooth_radius_edges`` with ``band``, ``width``).
    """
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {graph!r}")
    radius = None
    if graph == "smooth":
        src, dst, vec, shift, radius = smooth_radius_edges(structure.lattice.matrix, structure.cart_coords, k,
                                                           band, width)
    else:
        src, dst, vec, shift = knn_radius_edges(structure.lattice.matrix, structure.cart_coords, k)
    rotations = orbit_map = None
    if symmetry is not None:
        rotations = symmetry.rotations
        if orbits:
            orbit_map = atom_orbits(structure.frac_coords, structure.lattice.matrix, symmetry, src, dst, vec)
    return CrystalGraph(
        atomic_numbers=np.asarray(structure.atomic_numbers, dtype=np.int64),
        edge_src=src, edge_dst=dst, edge_vec=vec, edge_shift=shift,
        lattice=np.asarray(structure.lattice.matrix, dtype=np.float64),
        rotations=rotations,
        spacegroup_number=None if symmetry is None else int(symmetry.spacegroup_number),
        orbit_rep=None if orbit_map is None else orbit_map.rep,
        orbit_rotation=None if orbit_map is None else orbit_map.rotation,
        site_rotations=None if orbit_map is None else orbit_map.site,
        edge_multiplicity=None if orbit_map is None else orbit_map.edge_multiplicity,
        edge_radius=radius,
    )
