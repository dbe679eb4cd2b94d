"""Collating crystal graphs into one batch of torch tensors for the network."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from gmtnet.graph import CrystalGraph, atom_features
from gmtnet.model.symmetrize import averaged_wigner_groups, wigner_matrices
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.symmetry.constraints import reynolds_projectors
from gmtnet.tensors import TensorType


@dataclass
class GraphBatch:
    """B crystals, N atoms, E edges in one batch.

    Attributes:
        node_features: (N, 92) CGCNN features.  edge_src, edge_dst: (E,) node indices.
        edge_vec: (E, 3) Angstrom.  node_graph: (N,) crystal index of each atom.
        feature_projectors: {(l, p): (B, 2l+1, 2l+1)} averaged Wigner matrices, or None.
        output_projector: (B, 3^n, 3^n) Reynolds projectors, or None.
        edge_radius: (E,) soft radius of each edge's centre atom (smooth graphs), or None.
    """

    node_features: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_vec: torch.Tensor
    node_graph: torch.Tensor
    n_graphs: int
    feature_projectors: dict | None = None
    output_projector: torch.Tensor | None = None
    orbits: "OrbitBatch | None" = None
    edge_radius: torch.Tensor | None = None


@dataclass
class OrbitBatch:
    """A batch's atoms grouped by orbit, for evaluating a network at one atom per orbit.

    With it, the GraphBatch's edges are one per edge class into each representative (the classes
    of its incoming edges under its site-symmetry group, ``gmtnet.graph.orbits``): ``edge_dst``
    indexes ``rep_nodes`` and ``edge_src`` the batch's atoms. M representatives, N atoms, E edges.

    Attributes:
        rep_nodes: (M,) batch index of each representative atom.
        node_rep: (N,) index into ``rep_nodes`` of each atom's representative.
        wigner: [D^l (N, 2l+1, 2l+1) for l = 0..lmax] of the proper part of each atom's orbit
            rotation (e3nn's real basis).
        parity_sign: (N,) -1.0 where that rotation is improper, else 1.0.
        rep_weight: (M,) atoms in each representative's orbit (float, the batch's dtype).
        edge_weight: (E,) edges of each edge's class (float): a sum over a representative's
            incoming edges is the projected sum of edge_weight times the kept edges' terms.
        site_projectors: {(l, p): (M, 2l+1, 2l+1)} mean of D^(l,p)(s) over each representative's
            site-symmetry group, for l = 0..lmax and both parities but even scalars (always 1).
    """

    rep_nodes: torch.Tensor
    node_rep: torch.Tensor
    wigner: list
    parity_sign: torch.Tensor
    rep_weight: torch.Tensor
    edge_weight: torch.Tensor
    site_projectors: dict

    def expand(self, x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
        """(N, irreps.dim) features of every atom from its representative's (M, irreps.dim):
        x_j = D^(l,p)(R_j) x_rep(j) per irrep block, with D^(l,p)(R) = p^k D^l(det(R) R)."""
        x = x.index_select(0, self.node_rep)
        n, blocks = x.shape[0], []
        for (mul, ir), sl in zip(irreps, irreps.slices()):
            block = x[:, sl]
            if ir.l > 0:
                block = torch.bmm(block.reshape(n, mul, ir.dim), self.wigner[ir.l].transpose(1, 2)).reshape(n, -1)
            blocks.append(block * self.parity_sign[:, None] if ir.p == -1 else block)
        return torch.cat(blocks, dim=1)

    def project_sites(self, x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
        """(M, irreps.dim): each representative's features x (M, irreps.dim) projected onto the
        invariants of its site-symmetry group, P_r x_r per irrep block (even scalars unchanged)."""
        m, blocks = x.shape[0], []
        for (mul, ir), sl in zip(irreps, irreps.slices()):
            block = x[:, sl]
            if ir.l > 0:
                p = self.site_projectors[(ir.l, ir.p)]
                block = torch.bmm(block.reshape(m, mul, ir.dim), p.transpose(1, 2)).reshape(m, -1)
            elif ir.p == -1:
                block = block * self.site_projectors[(0, -1)].reshape(m, 1)
            blocks.append(block)
        return torch.cat(blocks, dim=1)


def per_edge(rows: torch.Tensor, edge_rows: torch.Tensor | None) -> torch.Tensor:
    """(E, ...): values computed once per distinct edge length, ``rows`` (U, ...), gathered to the
    edges by ``edge_rows`` (E,) (``GMTNet.edge_features``); ``rows`` itself if ``edge_rows`` is None."""
    return rows if edge_rows is None else rows.index_select(0, edge_rows)


def concat_present(parts: list) -> np.ndarray | None:
    """The arrays of ``parts`` concatenated, or None if any is None (a field some graphs lack)."""
    return None if any(p is None for p in parts) else np.concatenate(parts)


def scatter_mean(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """(n, F) means of the rows of x (M, F) grouped by ``index`` (M,); empty groups give 0."""
    out = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    count = torch.bincount(index, minlength=n).clamp(min=1).to(x.dtype)
    return out / count[:, None]


def graph_constraints(graph: CrystalGraph, ttype: TensorType) -> SymmetryConstraints:
    """The crystal's forced pattern and Reynolds projector for ``ttype`` (cached on the graph)."""
    if ttype.name not in graph.cache.constraints:
        if graph.rotations is None:
            raise ValueError("graph has no point group (built with symprec=None): no symmetry constraints")
        fill_constraints_cache([graph], ttype)
    return graph.cache.constraints[ttype.name]


def fill_constraints_cache(graphs: list[CrystalGraph], ttype: TensorType) -> None:
    """Cache ``graph_constraints`` on each graph with rotations that lacks it, the Reynolds
    projectors of all of them computed in one call."""
    todo = [g for g in graphs if g.rotations is not None and ttype.name not in g.cache.constraints]
    if not todo:
        return
    rotations = [np.asarray(g.rotations, dtype=float).reshape(-1, 3, 3) for g in todo]
    for g, rots, projector in zip(todo, rotations, reynolds_projectors(rotations, ttype)):
        g.cache.constraints[ttype.name] = SymmetryConstraints(ttype=ttype, rotations=rots, projector=projector)


def fill_rotation_cache(graphs: list[CrystalGraph], lmax: int) -> None:
    """Cache on each graph with rotations ``rotation_wigner`` ([D^l (n_r, 2l+1, 2l+1) of each
    point-group rotation, l = 0..L], L >= lmax; shared by the averaged matrices and the orbit
    data) and ``rotation_sign`` ((n_r,) det R): computed for all the graphs that lack them in one call."""
    todo = [g for g in graphs if g.rotations is not None and g.cache.wigner_lmax < lmax]
    if not todo:
        return
    rotations = np.concatenate([np.asarray(g.rotations, dtype=np.float64).reshape(-1, 3, 3) for g in todo])
    matrices = wigner_matrices(rotations, lmax)
    signs = np.where(np.linalg.det(rotations) < 0, -1.0, 1.0)
    ends = np.cumsum([len(g.rotations) for g in todo]).tolist()
    for g, start, end in zip(todo, [0] + ends[:-1], ends):  # views of the rows of each graph
        g.cache.rotation_wigner = [d[start:end] for d in matrices]
        g.cache.rotation_sign = signs[start:end]


@functools.lru_cache(maxsize=None)
def _wigner_key(irreps: o3.Irreps) -> str:
    """The key of the averaged Wigner matrices in PointGroupData (str of an Irreps costs more than a lookup)."""
    return str(irreps)


def fill_wigner_cache(graphs: list[CrystalGraph], irreps: o3.Irreps) -> None:
    """Cache on each graph with rotations that lacks them the crystal's averaged Wigner matrices
    {(l, p): (2l+1, 2l+1)} for ``irreps`` (``averaged_wigner``), all graphs in one call."""
    key = _wigner_key(irreps)
    todo = [g for g in graphs if g.rotations is not None and key not in g.cache.averaged_wigner]
    if not todo:
        return
    fill_rotation_cache(todo, irreps.lmax)
    matrices = [np.concatenate([g.cache.rotation_wigner[l] for g in todo]) for l in range(irreps.lmax + 1)]
    signs = np.concatenate([g.cache.rotation_sign for g in todo])
    counts = np.array([len(g.rotations) for g in todo])
    for g, average in zip(todo, averaged_wigner_groups(counts, irreps, matrices, signs)):
        g.cache.averaged_wigner[key] = average


def _site_projector_keys(lmax: int) -> list[tuple[int, int]]:
    """The (l, p) blocks OrbitBatch.project_sites projects: all up to lmax but even scalars."""
    return [(l, p) for l in range(lmax + 1) for p in (1, -1) if (l, p) != (0, 1)]


def orbit_arrays(graphs: list[CrystalGraph], lmax: int) -> dict:
    """The orbit data of graphs concatenated in order (as one batch), with batch indices:
    "reps" (M,) atom index of each representative, "node_rep" (N,) each atom's representative
    (index into reps), "wigner" [(N, 2l+1, 2l+1), l = 0..lmax] and "sign" (N,) of each atom's
    orbit rotation, the kept edges (one per edge class into each representative: "edge_src" atom,
    "edge_dst" representative, "edge_vec", "edge_weight" class size, "edge_radius" or None),
    "site_projectors" {(l, p): (M, 2l+1, 2l+1)}, and per graph "n_atoms", "n_reps", "n_edges" (kept). A graph
    without an orbit map gets every atom as its own representative, with trivial site groups.
    A graph's rows do not depend on the others."""
    mapped = [g.orbit_rep is not None for g in graphs]
    fill_rotation_cache([g for g, m in zip(graphs, mapped) if m], lmax)
    cat = np.concatenate
    sizes = np.array([g.n_atoms for g in graphs])
    atom_start = np.cumsum(sizes) - sizes
    # every mapped graph's rotations, then one identity for the atoms of unmapped graphs
    n_rot = np.array([len(g.rotations) if m else 0 for g, m in zip(graphs, mapped)])
    rot_start, identity = np.cumsum(n_rot) - n_rot, int(n_rot.sum())
    d = [cat([g.cache.rotation_wigner[l] for g, m in zip(graphs, mapped) if m] + [np.eye(2 * l + 1)[None]])
         for l in range(lmax + 1)]
    det_sign = cat([g.cache.rotation_sign for g, m in zip(graphs, mapped) if m] + [np.ones(1)])
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
    for l, p in _site_projector_keys(lmax):
        values = d[l][pairs_rot]
        if p == -1:
            values = values * det_sign[pairs_rot][:, None, None]
        projectors[(l, p)] = np.add.reduceat(values, starts, axis=0) / counts[:, None, None]
    # edges into representatives, one per class (multiplicity 0: a class's other members)
    n_edges = np.array([g.n_edges for g in graphs])
    src = cat([g.edge_src for g in graphs]) + np.repeat(atom_start, n_edges)
    dst = cat([g.edge_dst for g in graphs]) + np.repeat(atom_start, n_edges)
    multiplicity = cat([g.edge_multiplicity if m and g.edge_multiplicity is not None else np.ones(g.n_edges, dtype=np.int64)
                        for g, m in zip(graphs, mapped)])
    keep = is_rep[dst] & (multiplicity > 0)
    radius = concat_present([g.edge_radius for g in graphs])
    return {
        "reps": reps, "node_rep": position[rep], "wigner": [x[rotation] for x in d], "sign": det_sign[rotation],
        "edge_src": src[keep], "edge_dst": position[dst[keep]], "edge_vec": cat([g.edge_vec for g in graphs])[keep],
        "edge_weight": multiplicity[keep].astype(np.float64),
        "edge_radius": None if radius is None else radius[keep], "site_projectors": projectors,
        "n_atoms": sizes, "n_reps": n_reps,
        "n_edges": np.bincount(np.repeat(np.arange(len(graphs)), n_edges)[keep], minlength=len(graphs)),
    }


def fill_orbit_cache(graphs: list[CrystalGraph], lmax: int) -> None:
    """Cache on each graph that lacks it its orbit data (``PointGroupData.orbits[lmax]``):
    ``orbit_arrays`` of the graph alone, with its own atom and representative indices. All graphs
    are computed together, then split."""
    todo = [g for g in graphs if lmax not in g.cache.orbits]
    if not todo:
        return
    arrays = orbit_arrays(todo, lmax)
    bounds = {name: np.cumsum(arrays[name]) - arrays[name] for name in ("n_atoms", "n_reps", "n_edges")}
    for k, g in enumerate(todo):
        a0, r0, e0 = (int(bounds[name][k]) for name in ("n_atoms", "n_reps", "n_edges"))
        atoms = slice(a0, a0 + int(arrays["n_atoms"][k]))
        reps = slice(r0, r0 + int(arrays["n_reps"][k]))
        edges = slice(e0, e0 + int(arrays["n_edges"][k]))
        g.cache.orbits[lmax] = {
            "reps": arrays["reps"][reps] - a0, "node_rep": arrays["node_rep"][atoms] - r0,
            "wigner": [w[atoms] for w in arrays["wigner"]], "sign": arrays["sign"][atoms],
            "edge_src": arrays["edge_src"][edges] - a0, "edge_dst": arrays["edge_dst"][edges] - r0,
            "edge_vec": arrays["edge_vec"][edges], "edge_weight": arrays["edge_weight"][edges],
            "edge_radius": None if arrays["edge_radius"] is None else arrays["edge_radius"][edges],
            "site_projectors": {key_lp: value[reps] for key_lp, value in arrays["site_projectors"].items()},
        }


def _batch_orbit_arrays(graphs: list[CrystalGraph], lmax: int) -> dict:
    """``orbit_arrays`` of a batch: from the graphs' caches where all have them (offsets added),
    else computed for the batch directly (nothing cached)."""
    if not all(lmax in g.cache.orbits for g in graphs):
        return orbit_arrays(graphs, lmax)
    per_graph = [g.cache.orbits[lmax] for g in graphs]
    cat = np.concatenate
    sizes = np.array([g.n_atoms for g in graphs])
    n_reps = np.array([len(p["reps"]) for p in per_graph])
    n_edges = np.array([len(p["edge_src"]) for p in per_graph])
    atom_offsets, rep_offsets = np.cumsum(sizes) - sizes, np.cumsum(n_reps) - n_reps
    return {
        "reps": cat([p["reps"] for p in per_graph]) + np.repeat(atom_offsets, n_reps),
        "node_rep": cat([p["node_rep"] for p in per_graph]) + np.repeat(rep_offsets, sizes),
        "wigner": [cat([p["wigner"][l] for p in per_graph]) for l in range(lmax + 1)],
        "sign": cat([p["sign"] for p in per_graph]),
        "edge_src": cat([p["edge_src"] for p in per_graph]) + np.repeat(atom_offsets, n_edges),
        "edge_dst": cat([p["edge_dst"] for p in per_graph]) + np.repeat(rep_offsets, n_edges),
        "edge_vec": cat([p["edge_vec"] for p in per_graph]),
        "edge_weight": cat([p["edge_weight"] for p in per_graph]),
        "edge_radius": concat_present([p["edge_radius"] for p in per_graph]),
        "site_projectors": {k: cat([p["site_projectors"][k] for p in per_graph]) for k in per_graph[0]["site_projectors"]},
        "n_atoms": sizes, "n_reps": n_reps, "n_edges": n_edges,
    }


def fill_caches(graphs: list[CrystalGraph], irreps: o3.Irreps | None = None, ttype: TensorType | None = None,
                orbit_lmax: int | None = None) -> None:
    """Cache on the graphs everything ``collate`` (or ``snap``) reads for these arguments: the
    Reynolds projectors for ``ttype``, the orbit data up to ``orbit_lmax`` and the averaged Wigner
    matrices for ``irreps``, each computed for all the graphs lacking it in one call (the
    rotations' Wigner matrices once, up to the higher l)."""
    if orbit_lmax is not None or irreps is not None:
        fill_rotation_cache(graphs, max(orbit_lmax or 0, irreps.lmax if irreps is not None else 0))
    if ttype is not None:
        fill_constraints_cache(graphs, ttype)
    if orbit_lmax is not None:
        fill_orbit_cache(graphs, orbit_lmax)
    if irreps is not None:
        fill_wigner_cache(graphs, irreps)


def collate(graphs: list[CrystalGraph], irreps: o3.Irreps | None = None, ttype: TensorType | None = None,
            dtype=torch.float32, device=None, orbit_lmax: int | None = None, cache_orbits: bool = True) -> GraphBatch:
    """Batch graphs; with ``irreps`` / ``ttype`` also their point-group projectors (cached per graph);
    with ``orbit_lmax`` grouped by orbit (``OrbitBatch``: one edge per edge class into each
    representative), the orbit data cached per graph, or with ``cache_orbits=False`` read from the
    caches only where every graph has them and else computed for this batch alone (prediction)."""
    counts = [g.n_atoms for g in graphs]
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cat = np.concatenate
    as_int = functools.partial(torch.as_tensor, device=device)
    orbits = None
    have_rotations = all(g.rotations is not None for g in graphs)
    fill_caches(graphs, irreps if have_rotations else None, ttype if have_rotations else None,
                orbit_lmax if cache_orbits else None)
    if orbit_lmax is None:
        src = cat([g.edge_src + o for g, o in zip(graphs, offsets)])
        dst = cat([g.edge_dst + o for g, o in zip(graphs, offsets)])
        vec = cat([g.edge_vec for g in graphs])
        radius = concat_present([g.edge_radius for g in graphs])
    else:
        arrays = _batch_orbit_arrays(graphs, orbit_lmax)
        src, dst, vec, radius = arrays["edge_src"], arrays["edge_dst"], arrays["edge_vec"], arrays["edge_radius"]
        orbits = OrbitBatch(
            rep_nodes=as_int(arrays["reps"]),
            node_rep=as_int(arrays["node_rep"]),
            rep_weight=torch.as_tensor(np.bincount(arrays["node_rep"], minlength=len(arrays["reps"])), dtype=dtype,
                                       device=device),
            wigner=[torch.as_tensor(w, dtype=dtype, device=device) for w in arrays["wigner"]],
            parity_sign=torch.as_tensor(arrays["sign"], dtype=dtype, device=device),
            edge_weight=torch.as_tensor(arrays["edge_weight"], dtype=dtype, device=device),
            site_projectors={key: torch.as_tensor(value, dtype=dtype, device=device)
                             for key, value in arrays["site_projectors"].items()},
        )
    batch = GraphBatch(
        node_features=torch.as_tensor(atom_features(cat([g.atomic_numbers for g in graphs])), dtype=dtype, device=device),
        edge_src=as_int(src),
        edge_dst=as_int(dst),
        edge_vec=torch.as_tensor(vec, dtype=dtype, device=device),
        node_graph=as_int(np.repeat(np.arange(len(graphs)), counts)),
        n_graphs=len(graphs),
        orbits=orbits,
        edge_radius=None if radius is None else torch.as_tensor(radius, dtype=dtype, device=device),
    )
    if irreps is not None and have_rotations:
        per_graph = [g.cache.averaged_wigner[_wigner_key(irreps)] for g in graphs]
        batch.feature_projectors = {
            key: torch.as_tensor(np.stack([p[key] for p in per_graph]), dtype=dtype, device=device)
            for key in per_graph[0]
        }
    if ttype is not None and have_rotations:
        projectors = np.stack([g.cache.constraints[ttype.name].projector for g in graphs])
        batch.output_projector = torch.as_tensor(projectors, dtype=dtype, device=device)
    return batch
