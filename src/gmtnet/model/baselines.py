"""The paper's baselines (section 5.2, appendix A.4), sharing gmtnet's graph, data and training.

- MEGNet: an invariant graph network (MEGNet-style edge, node and global updates, 3 blocks) whose
  readout has 3^n outputs reshaped into the tensor. Not equivariant (the paper's point).
- ETGNN: invariant DimeNet++-style message passing (radial and angular (triplet) information on
  directed edges, 4 blocks), then the tensor as a sum over edges of scalar weights times tensors
  built from the edge's unit vector u and the identity: for order n every way of pairing indices
  with delta and filling the rest with u (order 2: u u, delta; order 3: u u u, u delta, ...). It is
  O(3)-equivariant but blind to the crystal's symmetry beyond what the edges carry.
- ``group_average`` (-GA, paper Table 11): the output is averaged over the crystal's point group,
  which equals its Reynolds projection: exact zeros and equalities up to rounding.

Both end with the tensor type's index symmetrizer only if ``symmetrize_indices`` (default off:
the paper's MEGNet predicts 9 free numbers for the dielectric tensor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from gmtnet.graph import ATOM_FEATURE_DIM
from gmtnet.model.base import TensorModel
from gmtnet.model.batch import GraphBatch, scatter_mean
from gmtnet.model.config import MAX_WIDTH
from gmtnet.model.embedding import RadialBasis
from gmtnet.tensors import TENSOR_TYPES, get_tensor_type
from gmtnet.utils.settings import at_least, check_settings, one_of, positive


@dataclass
class BaselineConfig:
    """Hyperparameters of a baseline.

    Attributes:
        task: tensor type name. hidden: feature width (MEGNet 64, ETGNN 128 in the paper).
        n_layers: message-passing blocks (None: MEGNet 3, ETGNN 4).
        rbf_bins, cutoff: Gaussian expansion of edge lengths on [0, cutoff] Angstrom.
        n_angular: Legendre polynomials of the bond angle cosine used by ETGNN triplets.
        n_triplet_radial: Gaussians of the incoming edge's length in the triplet basis.
        triplet_dim: width of the down-projected triplet messages (DimeNet++'s interaction size).
        group_average: average the output over the point group (-GA variant).
        symmetrize_indices: impose the tensor's index symmetry on the output.
        k, symprec, refine_structure, snap_output, output_scale, seed, dtype: as ModelConfig.
    """

    task: str = "dielectric"
    hidden: int | None = None
    n_layers: int | None = None
    rbf_bins: int = 50
    cutoff: float = 8.0
    n_angular: int = 4
    n_triplet_radial: int = 8
    triplet_dim: int = 32
    group_average: bool = False
    symmetrize_indices: bool = False
    k: int = 16
    symprec: float = 1e-3
    refine_structure: bool = False
    snap_output: bool = False
    output_scale: float = 1.0
    seed: int = 0
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a value of the wrong type or outside ``BASELINE_RULES`` (SettingsError)."""
        check_settings(BaselineConfig, self.to_dict(), rules=BASELINE_RULES)

    def to_dict(self) -> dict:
        return asdict(self)


BASELINE_RULES = {
    "task": one_of(*TENSOR_TYPES), "hidden": at_least(1, MAX_WIDTH), "n_layers": at_least(1, 32),
    "rbf_bins": at_least(1, MAX_WIDTH), "cutoff": positive(100.0), "n_angular": at_least(1, 32),
    "n_triplet_radial": at_least(1, MAX_WIDTH), "triplet_dim": at_least(1, MAX_WIDTH), "k": at_least(1, 256),
    "symprec": positive(1.0), "output_scale": positive(), "seed": at_least(0, 2 ** 63 - 1),
    "dtype": one_of("float32", "float64"),
}


def _mlp(d_in: int, d_out: int, hidden: int, act=nn.SiLU) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), act(), nn.Linear(hidden, d_out))


class _Baseline(TensorModel):
    default_hidden = 64
    default_layers = 3

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = config
        self.ttype = get_tensor_type(config.task)
        self.hidden = config.hidden or self.default_hidden
        self.n_layers = config.n_layers or self.default_layers
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.build()
        self.to(getattr(torch, config.dtype))
        self.register_buffer("_symmetrizer", torch.from_numpy(self.ttype.index_symmetrizer).to(getattr(torch, config.dtype)))

    @property
    def projects_output(self) -> bool:
        return self.config.group_average

    def build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def raw_tensor(self, batch: GraphBatch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        t = self.raw_tensor(batch).reshape(batch.n_graphs, -1) * self.config.output_scale  # [B, 3^n]
        if self.config.symmetrize_indices:
            t = t @ self._symmetrizer.T
        if self.config.group_average and batch.output_projector is not None:
            t = (batch.output_projector @ t[:, :, None])[:, :, 0]
        return t.reshape(batch.n_graphs, *self.ttype.shape)


class MEGNet(_Baseline):
    """Invariant MEGNet-style network with 3^n outputs (paper's MEGNET baseline)."""

    def build(self) -> None:
        d = self.hidden
        self.rbf = RadialBasis(0.0, self.config.cutoff, self.config.rbf_bins)
        self.node_in = _mlp(ATOM_FEATURE_DIM, d, d)
        self.edge_in = _mlp(self.config.rbf_bins, d, d)
        self.edge_updates = nn.ModuleList(_mlp(4 * d, d, 2 * d) for _ in range(self.n_layers))
        self.node_updates = nn.ModuleList(_mlp(3 * d, d, 2 * d) for _ in range(self.n_layers))
        self.global_updates = nn.ModuleList(_mlp(3 * d, d, 2 * d) for _ in range(self.n_layers))
        self.readout = _mlp(3 * d, 3 ** self.ttype.order, 2 * d)

    def raw_tensor(self, batch: GraphBatch) -> torch.Tensor:
        v = self.node_in(batch.node_features)
        e = self.edge_in(self.rbf(batch.edge_vec.norm(dim=1)))
        edge_graph = batch.node_graph.index_select(0, batch.edge_dst)
        u = torch.zeros(batch.n_graphs, v.shape[1], dtype=v.dtype, device=v.device)
        for fe, fv, fu in zip(self.edge_updates, self.node_updates, self.global_updates):
            e = e + fe(torch.cat([v.index_select(0, batch.edge_src), v.index_select(0, batch.edge_dst), e,
                                  u.index_select(0, edge_graph)], dim=1))
            v = v + fv(torch.cat([v, scatter_mean(e, batch.edge_dst, v.shape[0]), u.index_select(0, batch.node_graph)], dim=1))
            u = u + fu(torch.cat([u, scatter_mean(v, batch.node_graph, batch.n_graphs),
                                  scatter_mean(e, edge_graph, batch.n_graphs)], dim=1))
        pooled = torch.cat([scatter_mean(v, batch.node_graph, batch.n_graphs),
                            scatter_mean(e, edge_graph, batch.n_graphs), u], dim=1)
        return self.readout(pooled)


def pairing_patterns(order: int) -> list[tuple[tuple[tuple[int, int], ...], tuple[int, ...]]]:
    """Every way of pairing some of ``order`` indices (with delta) and leaving the rest for u:
    [(pairs, free indices)], e.g. order 2: [((), (0, 1)), (((0, 1),), ())]."""
    patterns = []

    def rec(remaining: tuple[int, ...], pairs: tuple, free: tuple) -> None:
        if not remaining:
            patterns.append((pairs, free))
            return
        first, rest = remaining[0], remaining[1:]
        rec(rest, pairs, free + (first,))
        for i, other in enumerate(rest):
            rec(rest[:i] + rest[i + 1:], pairs + ((first, other),), free)

    rec(tuple(range(order)), (), ())
    return patterns


def edge_tensor_basis(unit: torch.Tensor, order: int) -> torch.Tensor:
    """(E, P, 3^order): for each pairing pattern, the tensor with delta on paired indices and the
    unit vector on the free ones. Equivariant: basis(R u) = R . basis(u) for R in O(3)."""
    eye = torch.eye(3, dtype=unit.dtype, device=unit.device)
    letters = "abcdefgh"[:order]
    out = []
    for pairs, free in pairing_patterns(order):
        operands, subs = [], []
        for i, j in pairs:
            operands.append(eye)
            subs.append(letters[i] + letters[j])
        for i in free:
            operands.append(unit)
            subs.append("z" + letters[i])
        if not free:  # no unit vector: broadcast over edges
            t = torch.einsum(",".join(subs) + "->" + letters, *operands).reshape(1, -1).expand(unit.shape[0], -1)
        else:
            t = torch.einsum(",".join(subs) + "->z" + letters, *operands).reshape(unit.shape[0], -1)
        out.append(t)
    return torch.stack(out, dim=1)


class ETGNN(_Baseline):
    """DimeNet++-style invariant network + edge-direction tensor readout (paper's ETGNN baseline)."""

    default_hidden = 128
    default_layers = 4

    def build(self) -> None:
        d, c = self.hidden, self.config
        self.n_patterns = len(pairing_patterns(self.ttype.order))
        self.rbf = RadialBasis(0.0, c.cutoff, c.rbf_bins)
        self.node_in = nn.Linear(ATOM_FEATURE_DIM, d)
        self.edge_in = _mlp(2 * d + c.rbf_bins, d, d, nn.ELU)
        self.triplet_rbf = RadialBasis(0.0, c.cutoff, c.n_triplet_radial)
        n_basis = c.n_angular * c.n_triplet_radial
        # DimeNet++-style interaction: messages go down to triplet_dim, meet the angular basis, come back up
        self.angle_proj = nn.ModuleList(nn.Sequential(nn.Linear(n_basis, 8, bias=False), nn.Linear(8, c.triplet_dim, bias=False))
                                        for _ in range(self.n_layers))
        self.down = nn.ModuleList(nn.Sequential(nn.Linear(d, c.triplet_dim), nn.ELU()) for _ in range(self.n_layers))
        self.up = nn.ModuleList(nn.Sequential(nn.Linear(c.triplet_dim, d), nn.ELU()) for _ in range(self.n_layers))
        self.edge_mlps = nn.ModuleList(_mlp(2 * d, d, d, nn.ELU) for _ in range(self.n_layers))
        self.weight_out = _mlp(d + c.rbf_bins, self.n_patterns, d, nn.ELU)

    @staticmethod
    def triplets(batch: GraphBatch):
        """(t_in, t_out) edge-index pairs: edge k->j feeding edge j->i (k->j's dst is j->i's src),
        excluding the immediate back edge (same atom, opposite vector)."""
        src, dst = batch.edge_src, batch.edge_dst
        order = torch.argsort(dst, stable=True)
        counts = torch.bincount(dst, minlength=batch.node_features.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        n_in = counts[src]  # edges arriving at the source of each edge
        t_out = torch.repeat_interleave(torch.arange(len(src), device=src.device), n_in)
        offsets = torch.arange(int(n_in.sum()), device=src.device) - torch.repeat_interleave(torch.cumsum(n_in, 0) - n_in, n_in)
        t_in = order[torch.repeat_interleave(starts[src], n_in) + offsets]
        back = (src[t_in] == dst[t_out]) & torch.all((batch.edge_vec[t_in] + batch.edge_vec[t_out]).abs() < 1e-6, dim=1)
        return t_in[~back], t_out[~back]

    def raw_tensor(self, batch: GraphBatch) -> torch.Tensor:
        c = self.config
        lengths = batch.edge_vec.norm(dim=1)
        unit = batch.edge_vec / lengths[:, None]
        rbf = self.rbf(lengths)
        h = self.node_in(batch.node_features)
        m = self.edge_in(torch.cat([h.index_select(0, batch.edge_src), h.index_select(0, batch.edge_dst), rbf], dim=1))  # [E, d]
        t_in, t_out = self.triplets(batch)
        # angle at j between j->k (= -v_in) and j->i (= v_out)
        cos = (-(unit[t_in] * unit[t_out]).sum(1)).clamp(-1, 1)
        legendre = [torch.ones_like(cos), cos]
        for n in range(2, c.n_angular):
            legendre.append(((2 * n - 1) * cos * legendre[-1] - (n - 1) * legendre[-2]) / n)
        radial_in = self.triplet_rbf(lengths)[t_in]  # [T, n_triplet_radial]
        angular = (torch.stack(legendre[: c.n_angular], 1)[:, :, None] * radial_in[:, None, :]).flatten(1)
        for proj, down, up, f_edge in zip(self.angle_proj, self.down, self.up, self.edge_mlps):
            trip = down(m)[t_in] * proj(angular)  # [T, triplet_dim]
            agg = torch.zeros(m.shape[0], trip.shape[1], dtype=m.dtype, device=m.device).index_add_(0, t_out, trip)
            m = m + f_edge(torch.cat([m, up(agg)], dim=1))
        weights = self.weight_out(torch.cat([m, rbf], dim=1))  # [E, P]
        basis = edge_tensor_basis(unit, self.ttype.order)  # [E, P, 3^n]
        per_edge = (weights[:, :, None] * basis).sum(1)
        return scatter_mean(per_edge, batch.node_graph[batch.edge_dst], batch.n_graphs)
