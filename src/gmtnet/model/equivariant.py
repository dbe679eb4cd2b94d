"""TFN-style equivariant message passing (paper equations 4-5), both parities, with e3nn.

Messages are f_j (x) Y(v_ji) with per-edge weights from an MLP of the invariant edge features
(channel-wise "uvu" paths), summed over neighbours, mixed by a linear layer and passed through a
gated nonlinearity; a linear self-connection of f_i is added. Note: the paper's equation 5 writes
the centre feature f_i in the product; we use the neighbour f_j as TFN does (with f_i the sum
over j would carry no neighbour information).
"""

from __future__ import annotations

import torch
from e3nn import nn as enn
from e3nn import o3
from torch import nn

from gmtnet.model.batch import per_edge
from gmtnet.model.block_linear import BlockLinear
from gmtnet.model.edge_product import FusedEdgeTensorProduct
from gmtnet.model.inference import refuse_autograd


def hidden_irreps(lmax: int, mul_scalars: int, mul_vectors: int) -> o3.Irreps:
    """Scalars of both parities plus mul_vectors channels of every l = 1..lmax, both parities."""
    parts = [(mul_scalars, (0, 1)), (mul_scalars, (0, -1))]
    for l in range(1, lmax + 1):
        parts += [(mul_vectors, (l, 1)), (mul_vectors, (l, -1))]
    return o3.Irreps(parts).sort().irreps.simplify()


class EquivariantLayer(nn.Module):
    """One TFN layer: irreps_in -> irreps_out (irreps_out = hidden_irreps(...)). Shapes:
    nodes (N, irreps_in.dim), edge_sh (E, sh.dim), edge_feats (E, edge_dim)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, irreps_sh: o3.Irreps, edge_dim: int,
                 radial_hidden: int, avg_neighbors: float = 16.0, message_mul: int | None = None,
                 edge_product: str = "fused"):
        super().__init__()
        if edge_product not in ("fused", "e3nn"):
            raise ValueError(f"edge_product must be 'fused' or 'e3nn', got {edge_product!r}")
        # with the fused kernel, e3nn's product and linear maps only describe the paths and hold
        # the weights (never run in training or prediction): their generated code is left
        # unoptimized, which makes building a layer cheaper
        optimize = {"_optimize_einsums": edge_product == "e3nn"}
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        if message_mul is not None:  # narrow every irrep to message_mul channels before the edge product
            self.irreps_msg = o3.Irreps([(message_mul, ir) for _, ir in self.irreps_in])
            self.linear_in = o3.Linear(self.irreps_in, self.irreps_msg, **optimize)
        else:
            self.irreps_msg, self.linear_in = self.irreps_in, None
        self.irreps_sh = o3.Irreps(irreps_sh)
        wanted = {ir for _, ir in self.irreps_out}
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(self.irreps_msg):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir in ir_in * ir_sh:
                    if ir in wanted:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir))
        mid = o3.Irreps(mid)
        mid_sorted, perm, _ = mid.sort()
        instructions = [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]
        self.tp = o3.TensorProduct(self.irreps_msg, irreps_sh, mid_sorted, instructions,
                                   shared_weights=False, internal_weights=False, **optimize)
        # the fused kernel computes the same function with the same weights (tests check it in float64)
        self.fused_tp = FusedEdgeTensorProduct(self.tp) if edge_product == "fused" else None
        self.radial = nn.Sequential(nn.Linear(edge_dim, radial_hidden), nn.SiLU(),
                                    nn.Linear(radial_hidden, self.tp.weight_numel))
        scalars = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l > 0])
        gates = o3.Irreps([(gated.num_irreps, (0, 1))])
        self.gate = enn.Gate(scalars, [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars],
                             gates, [torch.sigmoid], gated)
        self._init_fast_gate()
        self.linear = o3.Linear(mid_sorted.simplify(), self.gate.irreps_in, **optimize)
        self.self_connection = o3.Linear(self.irreps_in, self.irreps_out, **optimize)
        self.norm = 1.0 / avg_neighbors
        # with the fused kernel the linear maps also run as one product per l (same weights and
        # function, the message mean's 1/avg_neighbors folded into ``linear``'s matrices); the
        # "e3nn" setting keeps every part e3nn's own, the reference
        self.block_linears = None if edge_product == "e3nn" else nn.ModuleDict(
            {name: BlockLinear(getattr(self, name), self.norm if name == "linear" else 1.0)
             for name in ("linear_in", "linear", "self_connection") if getattr(self, name) is not None})
        self.unused_l: frozenset = frozenset()
        self.pruned = None
        self.inference = False  # the inference form (gmtnet.model.inference), set by enter_inference

    def skip_unused_outputs(self, ls) -> None:
        """Declare that the output irreps of these l never reach the model's result (the head
        cannot couple them to the tensor's irreps). The inference form (``enter_inference``, fused
        kernel) then does not compute them: they are 0, and the paths, linear blocks and radial
        weights that only produce them are skipped. Training and the state dict are unchanged."""
        self.unused_l = frozenset(ls) & {ir.l for _, ir in self.irreps_out}
        if not self.unused_l or self.fused_tp is None:
            self.pruned = None
            return
        self.pruned = nn.ModuleDict({
            "fused_tp": FusedEdgeTensorProduct(self.tp, skip_l=self.unused_l),
            "linear": BlockLinear(self.linear, self.norm, skip_l=self.unused_l),
            "self_connection": BlockLinear(self.self_connection, skip_l=self.unused_l),
        })

    def _block_linears(self):
        """Every BlockLinear of this layer with the o3.Linear whose weight it evaluates."""
        out = [(m, getattr(self, name)) for name, m in (self.block_linears or {}).items()]
        if self.pruned is not None:
            out += [(self.pruned[name], getattr(self, name)) for name in ("linear", "self_connection")]
        return out

    def enter_inference(self) -> None:
        """Switch to the inference form: pruned outputs, linear maps' matrices kept for the
        current weights (``gmtnet.model.inference``)."""
        for block, linear in self._block_linears():
            block.freeze(linear.weight)
        self.inference = True

    def leave_inference(self) -> None:
        for block, _ in self._block_linears():
            block.unfreeze()
        self.inference = False

    def _linear(self, name: str, x: torch.Tensor, pruned: bool = False) -> torch.Tensor:
        """``getattr(self, name)(x)`` (``linear``: of ``x * self.norm``), by BlockLinear where there
        is one (``pruned``: the one that skips ``unused_l``)."""
        linear = getattr(self, name)
        if pruned and name in self.pruned:
            return self.pruned[name](x, linear.weight)
        if self.block_linears is None:
            return linear(x * self.norm if name == "linear" else x)
        return self.block_linears[name](x, linear.weight)

    def _init_fast_gate(self) -> None:
        """Index tensors for ``_gate``: e3nn's Gate is a fixed permutation of its input into
        scalars, gates and gated irreps (read off by applying it to 0, 1, 2, ...), activations,
        and a product of each gated irrep with its gate."""
        gate = self.gate
        self._fast_gate = gate.mul.weight.numel() == 0 and len(gate.irreps_gated) > 0
        if not self._fast_gate:
            return
        probe = torch.arange(gate.irreps_in.dim, dtype=torch.float64)[None]
        for name, index in zip(("scalars", "gates", "gated"), gate.sc(probe)):
            self.register_buffer(f"_gate_{name}", index[0].round().long(), persistent=False)
        self.register_buffer("_gate_of_column", torch.tensor(
            [k for k, d in enumerate(ir.dim for mul, ir in gate.irreps_gated for _ in range(mul)) for _ in range(d)]),
            persistent=False)

    def _gate(self, x: torch.Tensor) -> torch.Tensor:
        """``self.gate(x)`` with a handful of operations (e3nn's generated code for the split and
        the gated product runs dozens per call); the tests compare the two."""
        if not self._fast_gate:
            return self.gate(x)
        gate = self.gate
        scalars = gate.act_scalars(x.index_select(1, self._gate_scalars))
        gates = gate.act_gates(x.index_select(1, self._gate_gates))
        gated = x.index_select(1, self._gate_gated) * gates.index_select(1, self._gate_of_column)
        return torch.cat([scalars, gated], dim=1)

    def forward(self, f, edge_sh, edge_feats, src, dst, orbits=None, edge_rows=None):
        """(n_centres, irreps_out.dim). ``edge_rows`` (E,): if given, ``edge_feats`` (U, edge_dim)
        holds distinct rows and edge e's is ``edge_feats[edge_rows[e]]`` (the radial network then
        runs on U rows). With ``orbits`` (an OrbitBatch) the centres are its
        representatives: their features are expanded to every atom's (``src`` indexes atoms,
        ``dst`` centres), each edge stands for its class (its Y times the class size; the product is
        linear in Y) and the sum is projected onto the site group's invariants."""
        if self.inference:
            refuse_autograd(self)
        g = self._linear("linear_in", f) if self.linear_in is not None else f
        pruned = self.inference and self.pruned is not None
        fused_tp = self.pruned["fused_tp"] if pruned else self.fused_tp
        if fused_tp is not None:
            # the radial network's last layer emits the weights in the kernel's order (its rows
            # permuted: a gather of (weights, hidden) parameters instead of (E, weights) activations)
            last, order = self.radial[-1], fused_tp.weight_order
            weights = nn.functional.linear(self.radial[:-1](edge_feats), last.weight[order], last.bias[order])
        else:
            weights = self.radial(edge_feats)  # [E or U, weight_numel]
        weights = per_edge(weights, edge_rows)  # [E, weight_numel]
        if orbits is not None:
            g = orbits.expand(g, self.irreps_msg)
            # the product is linear in the weights and in Y: scale Y (E x 16, not E x weights)
            edge_sh = edge_sh * orbits.edge_weight[:, None]
        if fused_tp is not None:
            agg = fused_tp(g.index_select(0, src), edge_sh, weights, dst=dst, n_out=f.shape[0], ordered=True)  # [N, mid]
        else:
            msg = self.tp(g.index_select(0, src), edge_sh, weights)  # [E, mid]
            agg = torch.zeros(f.shape[0], msg.shape[1], dtype=msg.dtype, device=msg.device).index_add_(0, dst, msg)
        x = self._linear("linear", agg, pruned)  # [N, gate.irreps_in] (the mean over avg_neighbors included)
        if orbits is not None:  # the linear map is equivariant, so it commutes with the projection
            x = orbits.project_sites(x, self.gate.irreps_in)
        return self._gate(x) + self._linear("self_connection", f, pruned)  # [N, irreps_out]
