"""A fused kernel for the per-edge "uvu" tensor product of the equivariant layers.

It computes exactly the function of an ``e3nn.o3.TensorProduct`` whose instructions are all
"uvu" with per-edge weights and a second input of multiplicity 1 (the spherical harmonics), with
the same weight layout, so the two are interchangeable (checked in float64 by the tests).

Why: e3nn's generated code slices its inputs once per path; on CPU the backward of every slice
allocates and zero-fills a full (E, dim) gradient, which was 60% of a training step (profile in
docs/performance.md). Here each input irrep block i (mul_i channels of dimension d_i) is used
once, and its paths are grouped by output dimension d:

    M_i = Y @ C_i                  (E, d_i, D_i)      C_i: every path of block i, path weights folded in
    P_i = M_i^T @ x_i^T            (E, D_i, mul_i)    x_i: (E, mul_i, d_i)
    P_ig * w_ig                    (E, n_g, d, mul_i) one product per group g of n_g paths of dimension d

then (optionally summed over edges into nodes first) the paths are concatenated in e3nn's output
layout. D_i is the summed output dimension of block i's paths.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn


class FusedEdgeTensorProduct(nn.Module):
    """Same call and result as ``tp(x1, x2, weight)`` for the "uvu" ``tp`` it is built from.
    Shapes: x1 (E, irreps_in1.dim), x2 (E, irreps_in2.dim), weight (E, tp.weight_numel)
    -> (E, irreps_out.dim)."""

    def __init__(self, tp: o3.TensorProduct):
        super().__init__()
        ins = list(tp.instructions)
        if not ins or any(i.connection_mode != "uvu" or not i.has_weight for i in ins):
            raise ValueError("FusedEdgeTensorProduct supports only weighted 'uvu' instructions")
        if any(mul != 1 for mul, _ in tp.irreps_in2) or tp.shared_weights or tp.internal_weights:
            raise ValueError("FusedEdgeTensorProduct needs per-edge external weights and a multiplicity-1 second input")
        self.irreps_in1, self.irreps_in2, self.irreps_out = tp.irreps_in1, tp.irreps_in2, tp.irreps_out
        self.weight_numel = tp.weight_numel
        in2_slices, out_slices = tp.irreps_in2.slices(), tp.irreps_out.slices()
        weight_starts = [0]
        for i in ins[:-1]:
            weight_starts.append(weight_starts[-1] + i.path_shape[0])
        self.split_sizes = [mul * ir.dim for mul, ir in tp.irreps_in1]
        # blocks: (input block b, mul, d_i, [(n_paths, d) per group]); paths in the order produced
        self.blocks: list[tuple[int, int, int, list[tuple[int, int]]]] = []
        produced, weight_columns = [], []
        for b, (mul, ir1) in enumerate(tp.irreps_in1):
            paths = [(k, i) for k, i in enumerate(ins) if i.i_in1 == b]
            if not paths:
                continue
            paths.sort(key=lambda p: tp.irreps_out[p[1].i_out].ir.dim)  # stable: groups of equal d
            dims = [tp.irreps_out[i.i_out].ir.dim for _, i in paths]
            coupling = torch.zeros(tp.irreps_in2.dim, ir1.dim, sum(dims), dtype=torch.float64)
            col = 0
            for (k, i), d in zip(paths, dims):
                l1, l2, l3 = ir1.l, tp.irreps_in2[i.i_in2].ir.l, tp.irreps_out[i.i_out].ir.l
                w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)  # [i, j, k]
                coupling[in2_slices[i.i_in2], :, col:col + d] = i.path_weight * w3j.permute(1, 0, 2)
                produced.append(out_slices[i.i_out].start)
                weight_columns += range(weight_starts[k], weight_starts[k] + mul)
                col += d
            self.register_buffer(f"coupling_{b}", coupling.reshape(tp.irreps_in2.dim, -1), persistent=False)
            groups = [(dims.count(d), d) for d in sorted(set(dims))]
            self.blocks.append((b, mul, ir1.dim, groups))
        if sorted(produced) != [sl.start for sl in out_slices]:
            raise ValueError("every output irrep must be produced by exactly one path")
        # weights reordered to the production order, so that each group's are one (E, n_g, mul) view
        self.register_buffer("weight_order", torch.tensor(weight_columns, dtype=torch.long), persistent=False)
        self.cat_order = [n for _, n in sorted((start, n) for n, start in enumerate(produced))]
        self.weight_group_sizes = [n * mul for _, mul, _, groups in self.blocks for n, _ in groups]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor,
                dst: torch.Tensor | None = None, n_out: int | None = None) -> torch.Tensor:
        """(E, irreps_out.dim) per-edge products, or with ``dst`` (E,) and ``n_out`` their sums
        per destination, (n_out, irreps_out.dim): the same as index_add of the per-edge result,
        without assembling the (E, irreps_out.dim) tensor."""
        e = x1.shape[0]
        parts = torch.split(x1, self.split_sizes, dim=1)
        group_weights = iter(torch.split(weight.index_select(1, self.weight_order), self.weight_group_sizes, dim=1))
        pieces = []
        for b, mul, dim, groups in self.blocks:
            m = (x2 @ getattr(self, f"coupling_{b}")).reshape(e, dim, -1)  # [E, d_i, D_i]
            # channels last, so that the weighting below runs over contiguous rows of mul channels
            product = torch.bmm(m.transpose(1, 2), parts[b].reshape(e, mul, dim).transpose(1, 2))  # [E, D_i, mul]
            for group, (n_paths, d) in zip(torch.split(product, [n * d for n, d in groups], dim=1), groups):
                w = next(group_weights).reshape(e, n_paths, 1, mul)
                group = group.reshape(e, n_paths, d, mul) * w  # [E, n, d, mul]
                rows = e
                if dst is not None:
                    group = group.new_zeros(n_out, n_paths, d, mul).index_add_(0, dst, group)
                    rows = n_out
                pieces += [p.transpose(1, 2).reshape(rows, mul * d) for p in group.unbind(1)]
        return torch.cat([pieces[k] for k in self.cat_order], dim=1)
