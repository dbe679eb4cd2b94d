"""Collating crystal graphs into one batch of torch tensors for the network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from gmtnet.graph import CrystalGraph, atom_features
from gmtnet.model.symmetrize import averaged_wigner
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import TensorType


@dataclass
class GraphBatch:
    """B crystals, N atoms, E edges in one batch.

    Attributes:
        node_features: (N, 92) CGCNN features.  edge_src, edge_dst: (E,) node indices.
        edge_vec: (E, 3) Angstrom.  node_graph: (N,) crystal index of each atom.
        feature_projectors: {(l, p): (B, 2l+1, 2l+1)} averaged Wigner matrices, or None.
        output_projector: (B, 3^n, 3^n) Reynolds projectors, or None.
    """

    node_features: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_vec: torch.Tensor
    node_graph: torch.Tensor
    n_graphs: int
    feature_projectors: dict | None = None
    output_projector: torch.Tensor | None = None


def scatter_mean(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """(n, F) means of the rows of x (M, F) grouped by ``index`` (M,); empty groups give 0."""
    out = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    count = torch.bincount(index, minlength=n).clamp(min=1).to(x.dtype)
    return out / count[:, None]


def graph_constraints(graph: CrystalGraph, ttype: TensorType) -> SymmetryConstraints:
    """The crystal's forced pattern and Reynolds projector for ``ttype`` (cached on the graph)."""
    key = ("constraints", ttype.name)
    if key not in graph.cache:
        graph.cache[key] = SymmetryConstraints.from_rotations(graph.rotations, ttype)
    return graph.cache[key]


def graph_wigner(graph: CrystalGraph, irreps: o3.Irreps) -> dict:
    """The crystal's averaged Wigner matrices for ``irreps`` (cached on the graph)."""
    key = ("wigner", str(irreps))
    if key not in graph.cache:
        graph.cache[key] = averaged_wigner(graph.rotations, irreps)
    return graph.cache[key]


def collate(graphs: list[CrystalGraph], irreps: o3.Irreps | None = None, ttype: TensorType | None = None,
            dtype=torch.float32, device=None) -> GraphBatch:
    """Batch graphs; with ``irreps`` / ``ttype`` also their point-group projectors (cached per graph)."""
    offsets = np.concatenate(([0], np.cumsum([g.n_atoms for g in graphs])[:-1]))
    cat = np.concatenate
    src = cat([g.edge_src + o for g, o in zip(graphs, offsets)])
    dst = cat([g.edge_dst + o for g, o in zip(graphs, offsets)])
    batch = GraphBatch(
        node_features=torch.as_tensor(cat([atom_features(g.atomic_numbers) for g in graphs]), dtype=dtype, device=device),
        edge_src=torch.as_tensor(src, device=device),
        edge_dst=torch.as_tensor(dst, device=device),
        edge_vec=torch.as_tensor(cat([g.edge_vec for g in graphs]), dtype=dtype, device=device),
        node_graph=torch.as_tensor(np.repeat(np.arange(len(graphs)), [g.n_atoms for g in graphs]), device=device),
        n_graphs=len(graphs),
    )
    have_rotations = all(g.rotations is not None for g in graphs)
    if irreps is not None and have_rotations:
        per_graph = [graph_wigner(g, irreps) for g in graphs]
        batch.feature_projectors = {
            key: torch.as_tensor(np.stack([p[key] for p in per_graph]), dtype=dtype, device=device)
            for key in per_graph[0]
        }
    if ttype is not None and have_rotations:
        projectors = np.stack([graph_constraints(g, ttype).projector for g in graphs])
        batch.output_projector = torch.as_tensor(projectors, dtype=dtype, device=device)
    return batch
