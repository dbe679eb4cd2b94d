"""GMTNet assembled: embeddings -> invariant layers -> equivariant layers -> mean over atoms ->
point-group averaging -> tensor head -> optional Reynolds projection (paper section 3), on the
paper's k-NN graph or on the smooth graph (every message weighted by a smooth envelope)."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from gmtnet.graph import ATOM_FEATURE_DIM, GRAPHS, envelope
from gmtnet.model.base import TensorModel
from gmtnet.model.batch import GraphBatch, scatter_mean
from gmtnet.model.config import ModelConfig
from gmtnet.model.embedding import EdgeEmbedding
from gmtnet.model.equivariant import EquivariantLayer, hidden_irreps
from gmtnet.model.heads import TensorHead, head_irreps
from gmtnet.model.invariant import InvariantLayer
from gmtnet.model.symmetrize import symmetrize_features
from gmtnet.tensors import get_tensor_type, part_types
from gmtnet.tensors.bounds import bounded, has_bound
from gmtnet.tensors.irreps import formula_irreps, float64_default


class GMTNet(TensorModel):
    """Crystal -> Cartesian tensor of ``config.task`` in the crystal's own frame."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.ttype = get_tensor_type(config.task)
        lmax = config.resolved_lmax
        if config.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {config.dtype!r}")
        if config.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {config.graph!r}")
        # seeded weights without touching the caller's RNG; float64 so that e3nn's coefficients are exact
        with torch.random.fork_rng(), float64_default():
            torch.manual_seed(config.seed)
            self.atom_embedding = nn.Linear(ATOM_FEATURE_DIM, config.node_dim)
            self.edge_embedding = EdgeEmbedding(config.rbf_c, config.rbf_min, config.rbf_max, config.rbf_bins,
                                                config.edge_dim)
            self.invariant_layers = nn.ModuleList(
                InvariantLayer(config.node_dim, config.edge_dim) for _ in range(config.n_invariant))
            inner = min(lmax, config.inner_lmax) if config.inner_lmax is not None else lmax
            self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
            # the last layer only produces the irreps the head can couple to (the others would never
            # reach the output), e.g. only even parity for the elastic tensor
            self.irreps_hidden = head_irreps(hidden_irreps(lmax, config.mul_scalars, config.mul_vectors), self.ttype)
            irreps_inner = hidden_irreps(inner, config.mul_scalars, config.mul_vectors)
            layers, irreps_in = [], o3.Irreps(f"{config.node_dim}x0e")
            for i in range(config.n_equivariant):
                last = i == config.n_equivariant - 1
                irreps_out = self.irreps_hidden if last else irreps_inner
                irreps_sh = self.irreps_sh if last else o3.Irreps.spherical_harmonics(inner)
                layers.append(EquivariantLayer(irreps_in, irreps_out, irreps_sh, config.edge_dim,
                                               config.radial_hidden, avg_neighbors=float(config.k),
                                               message_mul=config.message_mul,
                                               edge_product=config.edge_product))
                irreps_in = irreps_out
            self.equivariant_layers = nn.ModuleList(layers)
            if config.parts:
                if not self.ttype.parts:
                    raise ValueError(f"{self.ttype.name} tensors have no parts")
                self.part_types = part_types(self.ttype)
                scales = config.part_scales if config.part_scales is not None else [1.0] * len(self.part_types)
                if len(scales) != len(self.part_types) or not all(float(x) > 0 for x in scales):
                    raise ValueError(f"part_scales must hold {len(self.part_types)} positive numbers, got {scales!r}")
                self.part_scales = [float(x) for x in scales]
                self.part_heads = nn.ModuleList(TensorHead(self.irreps_hidden, t) for t in self.part_types)
            else:
                self.head = TensorHead(self.irreps_hidden, self.ttype)
            # irreps of the last layer whose l the tensor does not contain reach the head only to be
            # removed by its index symmetrization (e.g. 1e for the symmetric dielectric tensor):
            # prediction skips computing them
            tensor_ls = {ir.l for _, ir in formula_irreps(self.ttype.formula)}
            layers[-1].skip_unused_outputs({ir.l for _, ir in self.irreps_hidden} - tensor_ls)
        self.to(getattr(torch, config.dtype))

    # ---- network ---------------------------------------------------------------------------
    def crystal_features(self, batch: GraphBatch) -> torch.Tensor:
        """G (B, irreps_hidden.dim): mean over atoms of the equivariant node features (eq. 6).

        With an orbit batch the layers run at one atom per orbit (M of the N atoms, one edge per
        edge class into them); the other atoms' features are their representatives' rotated by
        D(R) wherever they are needed (as neighbours, and in the mean). Sums over edges count each
        kept edge once per edge of its class, and equivariant sums are projected onto the site
        group's invariants. In training, batch normalisation counts each representative (and each
        kept edge) once per atom of its orbit (and edge of its class), so that its statistics are
        those of the whole batch.

        With the smooth graph every message, invariant and equivariant, is multiplied by its
        edge's envelope weight (``edge_envelope``), which also weighs the edge in batch norm's
        training statistics: an edge at the envelope's end contributes nothing anywhere."""
        orbits = batch.orbits
        node_weight = edge_weight = None
        envelope = self.edge_envelope(batch)  # [E] or None
        edge_mult = envelope  # [E]: how much of each edge's message enters its centre's sum
        if orbits is not None:
            edge_mult = orbits.edge_weight if envelope is None else orbits.edge_weight * envelope
            if self.training:
                node_weight = orbits.rep_weight
                edge_weight = node_weight.index_select(0, batch.edge_dst) * edge_mult
        elif self.training:
            edge_weight = envelope
        nodes = batch.node_features if orbits is None else batch.node_features.index_select(0, orbits.rep_nodes)
        f = self.atom_embedding(nodes)  # [N or M, node_dim]
        f_edge, edge_rows = self.edge_features(batch.edge_vec)  # [U, edge_dim], (E,)
        src_invariant = batch.edge_src if orbits is None else orbits.node_rep.index_select(0, batch.edge_src)
        for layer in self.invariant_layers:
            f = layer(f, f_edge, src_invariant, batch.edge_dst, node_weight, edge_weight, edge_mult, edge_rows)
        sh = o3.spherical_harmonics(self.irreps_sh, batch.edge_vec, normalize=True, normalization="component")
        if envelope is not None:  # the messages are linear in Y: weighting Y weights each message
            sh = sh * envelope[:, None]
        h = f
        for layer in self.equivariant_layers:
            h = layer(h, sh[:, :layer.irreps_sh.dim], f_edge, batch.edge_src, batch.edge_dst,
                      orbits=orbits, edge_rows=edge_rows)  # [N or M, irreps_out]
        if orbits is not None:
            h = orbits.expand(h, self.irreps_hidden)  # [N, irreps_hidden]
        g = scatter_mean(h, batch.node_graph, batch.n_graphs)
        if self.config.symmetrize_features and batch.feature_projectors is not None:
            g = symmetrize_features(g, self.irreps_hidden, batch.feature_projectors)
        return g

    def edge_envelope(self, batch: GraphBatch) -> torch.Tensor | None:
        """(E,) weight in [0, 1] of each edge's messages for the smooth graph (``envelope`` of its
        length and its centre's soft radius, ``gmtnet.graph.cutoff``), differentiable in the
        edge vectors; None for the k-NN graph (every edge weighs 1)."""
        if self.config.graph == "knn":
            return None
        if batch.edge_radius is None:
            raise ValueError("a smooth-graph model needs graphs built with graph='smooth' (edge radii)")
        return envelope(batch.edge_vec.norm(dim=1), batch.edge_radius, self.config.envelope_band)

    def edge_features(self, edge_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f_edge (U, edge_dim), edge_rows (E,)): the invariant edge features of the U distinct
        edge lengths and each edge's row among them. f^e and the radial filters are functions of
        |v| alone, and a crystal's edges repeat few lengths (bonds seen from both ends, edges
        related by symmetry), so they are computed once per distinct length: the same numbers.
        Where ``edge_vec`` carries gradients (a derivative with respect to positions) every edge
        keeps its own row and ``edge_rows`` is None."""
        lengths = edge_vec.norm(dim=1)
        if lengths.requires_grad:
            return self.edge_embedding(lengths), None
        distinct, edge_rows = torch.unique(lengths, return_inverse=True)
        return self.edge_embedding(distinct), edge_rows

    def forward(self, batch: GraphBatch, all_outputs: bool = False) -> torch.Tensor:
        """(B, 3, ..., 3) predicted tensors (with ``physical_bounds``: each obeying its type's
        stability bound, see ``gmtnet.tensors.bounds``); with ``parts``, the sum of the parts.
        ``all_outputs``: ``forward_outputs`` instead (through ``forward``, as data-parallel
        training needs)."""
        if all_outputs or self.config.parts:
            outputs = self.forward_outputs(batch)
            return outputs if all_outputs else outputs[:, 0]
        raw = self.head(self.crystal_features(batch))
        return self._projected(batch, self._scaled(raw, self.ttype, self.config.output_scale))

    def forward_outputs(self, batch: GraphBatch) -> torch.Tensor:
        """(B, K, 3, ..., 3): the outputs ``output_names`` (the tensor, then its parts with
        ``parts``; each part through its own stability bound, so their sum obeys the tensor's)."""
        if not self.config.parts:
            return self(batch)[:, None]
        g = self.crystal_features(batch)
        parts = [self._projected(batch, self._scaled(head(g), ptype, scale))
                 for head, ptype, scale in zip(self.part_heads, self.part_types, self.part_scales)]
        return torch.stack([sum(parts), *parts], dim=1)

    def _scaled(self, raw: torch.Tensor, ttype, scale: float) -> torch.Tensor:
        """A head's output in label units: through ``ttype``'s bound with ``physical_bounds``."""
        if self.config.physical_bounds and has_bound(ttype):
            return bounded(raw, ttype, scale)
        return raw * scale

    def _projected(self, batch: GraphBatch, t: torch.Tensor) -> torch.Tensor:
        """(B, 3, ..., 3) tensors projected onto their crystals' invariant subspaces (with
        ``project_output``; parts share the tensor's projector, ``TensorType.same_form``)."""
        if self.config.project_output and batch.output_projector is not None:
            t = (batch.output_projector @ t.reshape(t.shape[0], -1, 1)).reshape(t.shape)
        return t

    def compile_kernels(self) -> None:
        """torch.compile the per-edge work (fused tensor products, invariant layers) in place.
        Same numbers to float rounding; about 1.6x faster training steps on CPU after a one-off
        compilation of about a minute (docs/performance.md)."""
        import torch._dynamo.config as dynamo_config

        # every layer's kernel shares one code object; with several layers, models or batch
        # layouts in a process the default limit of 8 variants silently falls back to eager
        if hasattr(dynamo_config, "recompile_limit"):
            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
        for layer in self.invariant_layers:
            layer.compile(dynamic=True)
        for layer in self.equivariant_layers:
            if layer.fused_tp is not None:
                layer.fused_tp.compile(dynamic=True)
            if layer.pruned is not None:
                layer.pruned["fused_tp"].compile(dynamic=True)

    @property
    def heads(self) -> tuple[TensorHead, ...]:
        """The tensor heads: one, or one per part with ``parts`` (in ``part_types`` order)."""
        return tuple(self.part_heads) if self.config.parts else (self.head,)

    @property
    def orbit_lmax(self) -> int:
        """Highest l of the features that orbit batches rotate (layer messages and the output)."""
        return max([self.irreps_hidden.lmax] + [layer.irreps_msg.lmax for layer in self.equivariant_layers])

    @property
    def bounded_output(self) -> bool:
        """Whether predictions pass through the stability bound of the tensor type."""
        return self.config.physical_bounds and has_bound(self.ttype)

    @property
    def feature_irreps(self):
        return self.irreps_hidden if self.config.symmetrize_features else None

    @property
    def projects_output(self) -> bool:
        return self.config.project_output
