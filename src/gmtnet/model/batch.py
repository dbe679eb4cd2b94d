"""Collating crystal graphs into one batch of torch tensors for the network: their arrays and
their point-group records (``gmtnet.symmetry.PointGroupData``) concatenated."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from gmtnet.graph import CrystalGraph, atom_features
from gmtnet.symmetry import OrbitArrays, PointGroupData, PointGroupNeeds, irreps_key
from gmtnet.tensors import TensorType
from gmtnet.utils.arrays import concat_present


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
    of its incoming edges under its site-symmetry group, ``gmtnet.symmetry.orbits``): ``edge_dst``
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


def scatter_mean(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """(n, F) means of the rows of x (M, F) grouped by ``index`` (M,); empty groups give 0."""
    out = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    count = torch.bincount(index, minlength=n).clamp(min=1).to(x.dtype)
    return out / count[:, None]


def _records(graphs: list[CrystalGraph], needs: PointGroupNeeds) -> list[PointGroupData]:
    """The graphs' point-group records; ValueError naming what is missing if one lacks a part."""
    records = []
    for i, g in enumerate(graphs):
        record = g.point_group if g.point_group is not None else PointGroupData(rotations=g.rotations)
        missing = record.missing(needs)
        if missing:
            raise ValueError(f"graph {i} of the batch lacks {', '.join(missing)}: prepare the graphs "
                             "first (model.prepare_graphs)")
        records.append(record)
    return records


def collate(graphs: list[CrystalGraph], irreps: o3.Irreps | None = None, ttype: TensorType | None = None,
            dtype=torch.float32, device=None, orbit_lmax: int | None = None) -> GraphBatch:
    """Batch graphs by concatenating their arrays and their point-group records
    (``CrystalGraph.point_group``, computed beforehand by ``model.prepare_graphs``): with
    ``irreps`` / ``ttype`` the averaged Wigner matrices / Reynolds projectors (when every graph has
    a point group), with ``orbit_lmax`` grouped by orbit (``OrbitBatch``: one edge per edge class
    into each representative). ValueError if a graph's record lacks a part asked for."""
    have_rotations = all(g.rotations is not None for g in graphs)
    needs = PointGroupNeeds(ttype=ttype if have_rotations else None, irreps=irreps if have_rotations else None,
                            orbit_lmax=orbit_lmax)
    records = _records(graphs, needs)
    counts = [g.n_atoms for g in graphs]
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cat = np.concatenate
    as_int = functools.partial(torch.as_tensor, device=device)
    orbits = None
    if orbit_lmax is None:
        src = cat([g.edge_src + o for g, o in zip(graphs, offsets)])
        dst = cat([g.edge_dst + o for g, o in zip(graphs, offsets)])
        vec = cat([g.edge_vec for g in graphs])
        radius = concat_present([g.edge_radius for g in graphs])
    else:
        arrays = OrbitArrays.concatenate([r.orbits[orbit_lmax] for r in records])
        src, dst, vec, radius = arrays.edge_src, arrays.edge_dst, arrays.edge_vec, arrays.edge_radius
        orbits = OrbitBatch(
            rep_nodes=as_int(arrays.reps),
            node_rep=as_int(arrays.node_rep),
            rep_weight=torch.as_tensor(np.bincount(arrays.node_rep, minlength=arrays.n_reps), dtype=dtype,
                                       device=device),
            wigner=[torch.as_tensor(w, dtype=dtype, device=device) for w in arrays.wigner],
            parity_sign=torch.as_tensor(arrays.sign, dtype=dtype, device=device),
            edge_weight=torch.as_tensor(arrays.edge_weight, dtype=dtype, device=device),
            site_projectors={key: torch.as_tensor(value, dtype=dtype, device=device)
                             for key, value in arrays.site_projectors.items()},
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
    if needs.irreps is not None:
        per_graph = [r.averaged_wigner[irreps_key(irreps)] for r in records]
        batch.feature_projectors = {
            key: torch.as_tensor(np.stack([p[key] for p in per_graph]), dtype=dtype, device=device)
            for key in per_graph[0]
        }
    if needs.ttype is not None:
        projectors = np.stack([r.constraints[ttype.name].projector for r in records])
        batch.output_projector = torch.as_tensor(projectors, dtype=dtype, device=device)
    return batch
