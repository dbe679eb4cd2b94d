"""GMTNet assembled: embeddings -> invariant layers -> equivariant layers -> mean over atoms ->
point-group averaging -> tensor head -> optional Reynolds projection (paper section 3)."""

from __future__ import annotations

import numpy as np
import torch
from e3nn import o3
from torch import nn

from gmtnet.graph import ATOM_FEATURE_DIM, CrystalGraph, build_graph
from gmtnet.model.batch import GraphBatch, collate, graph_constraints
from gmtnet.model.config import ModelConfig
from gmtnet.model.embedding import EdgeEmbedding
from gmtnet.model.equivariant import EquivariantLayer, hidden_irreps
from gmtnet.model.heads import TensorHead
from gmtnet.model.invariant import InvariantLayer
from gmtnet.model.symmetrize import symmetrize_features
from gmtnet.tensors import get_tensor_type
from gmtnet.tensors.irreps import float64_default


class GMTNet(nn.Module):
    """Crystal -> Cartesian tensor of ``config.task`` in the crystal's own frame."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.ttype = get_tensor_type(config.task)
        lmax = config.resolved_lmax
        if config.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {config.dtype!r}")
        # seeded weights without touching the caller's RNG; float64 so that e3nn's coefficients are exact
        with torch.random.fork_rng(), float64_default():
            torch.manual_seed(config.seed)
            self.atom_embedding = nn.Linear(ATOM_FEATURE_DIM, config.node_dim)
            self.edge_embedding = EdgeEmbedding(config.rbf_c, config.rbf_min, config.rbf_max, config.rbf_bins,
                                                config.edge_dim)
            self.invariant_layers = nn.ModuleList(
                InvariantLayer(config.node_dim, config.edge_dim) for _ in range(config.n_invariant))
            self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
            self.irreps_hidden = hidden_irreps(lmax, config.mul_scalars, config.mul_vectors)
            layers, irreps_in = [], o3.Irreps(f"{config.node_dim}x0e")
            for _ in range(config.n_equivariant):
                layers.append(EquivariantLayer(irreps_in, self.irreps_hidden, self.irreps_sh, config.edge_dim,
                                               config.radial_hidden, avg_neighbors=float(config.k)))
                irreps_in = self.irreps_hidden
            self.equivariant_layers = nn.ModuleList(layers)
            self.head = TensorHead(self.irreps_hidden, self.ttype)
        self.to(getattr(torch, config.dtype))

    # ---- network ---------------------------------------------------------------------------
    def crystal_features(self, batch: GraphBatch) -> torch.Tensor:
        """G (B, irreps_hidden.dim): mean over atoms of the equivariant node features (eq. 6)."""
        f = self.atom_embedding(batch.node_features)  # [N, node_dim]
        lengths = batch.edge_vec.norm(dim=1)
        f_edge = self.edge_embedding(lengths)  # [E, edge_dim]
        for layer in self.invariant_layers:
            f = layer(f, f_edge, batch.edge_src, batch.edge_dst)
        sh = o3.spherical_harmonics(self.irreps_sh, batch.edge_vec, normalize=True, normalization="component")
        h = f
        for layer in self.equivariant_layers:
            h = layer(h, sh, f_edge, batch.edge_src, batch.edge_dst)  # [N, irreps_hidden]
        g = torch.zeros(batch.n_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch.node_graph, h)
        counts = torch.bincount(batch.node_graph, minlength=batch.n_graphs).to(h.dtype)
        g = g / counts[:, None]
        if self.config.symmetrize_features and batch.feature_projectors is not None:
            g = symmetrize_features(g, self.irreps_hidden, batch.feature_projectors)
        return g

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """(B, 3, ..., 3) predicted tensors."""
        t = self.head(self.crystal_features(batch))
        if self.config.project_output and batch.output_projector is not None:
            t = (batch.output_projector @ t.reshape(t.shape[0], -1, 1)).reshape(t.shape)
        return t

    # ---- convenience -----------------------------------------------------------------------
    def graph(self, structure) -> CrystalGraph:
        """The graph this model uses for a structure (refined first if configured)."""
        from gmtnet.symmetry import analyze_symmetry, refine_structure

        symmetry = analyze_symmetry(structure, self.config.symprec)
        if self.config.refine_structure:
            # the refined lattice is the symmetrized one, so its point group is ``symmetry``'s
            structure = refine_structure(structure, symmetry=symmetry)
        return build_graph(structure, k=self.config.k, symmetry=symmetry)

    def collate(self, graphs: list[CrystalGraph]) -> GraphBatch:
        param = next(self.parameters())
        return collate(graphs, self.irreps_hidden if self.config.symmetrize_features else None,
                       self.ttype if self.config.project_output else None, dtype=param.dtype, device=param.device)

    @torch.no_grad()
    def predict(self, structures, batch_size: int = 64) -> np.ndarray:
        """(N, 3, ..., 3) float64 tensors, each in its structure's own Cartesian frame.

        With ``snap_output`` (and a known point group) the result is projected in float64 and
        snapped so that forced zeros are exactly 0.0 and forced equalities exact."""
        from gmtnet.data.structures import as_structure

        was_training = self.training
        self.eval()
        try:
            out = []
            structures = [as_structure(s) for s in structures]
            for start in range(0, len(structures), batch_size):
                graphs = [self.graph(s) for s in structures[start:start + batch_size]]
                t = self(self.collate(graphs)).double().cpu().numpy()
                if self.config.snap_output:
                    t = np.stack([graph_constraints(g, self.ttype).project(x) for g, x in zip(graphs, t)])
                out.append(t)
            return np.concatenate(out) if out else np.zeros((0, *self.ttype.shape))
        finally:
            self.train(was_training)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
