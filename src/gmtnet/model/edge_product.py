"""A fused kernel for the per-edge "uvu" tensor product of the equivariant layers.

It computes exactly the function of an ``e3nn.o3.TensorProduct`` whose instructions are all
"uvu" with per-edge weights and a second input of multiplicity 1 (the spherical harmonics), with
the same weight layout, so the two are interchangeable (checked in float64 by the tests).

Why: e3nn's generated code slices its inputs once per path; on CPU the backward of every slice
allocates and zero-fills a full (E, dim) gradient, which was 60% of a training step (profile in
docs/performance.md). Here the input irrep blocks of equal l (both parities, any multiplicity)
are one group g: their T_g channels of dimension d = 2l+1 are stacked, and every coupling
(Y-irrep l2, output l3) that some block of the group uses is one column range of the group's
W_g output components. Per group:

    M_g = Y @ C_g                      (E, d, W_g)       C_g: Wigner-3j of every coupling
    P_g = M_g^T @ x_g^T                (E, W_g, T_g)     one batched product for all its blocks
    P_g *= w                           per coupling and channel, copied to its 2l3+1 rows

then (optionally summed over edges into nodes first) one gather puts the used (coupling,
channel) pairs in e3nn's output layout and one product applies the path weights. Columns no
block uses (a parity that the layer does not produce) are computed and dropped. Stacking the
parities matters on CPU: a batched product of 16 channels is 2-3x faster than two of 8.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from e3nn import o3
from torch import nn

from gmtnet.tensors.irreps import column_ls


class _Group(NamedTuple):
    """Input blocks sharing one batched product: their l (d = 2l+1), [(block, mul)], T stacked
    channels, W output components (each coupling's 2l3+1 rows) and the number of couplings."""

    l: int
    members: list[tuple[int, int]]
    channels: int
    width: int
    n_couplings: int


# torch's CPU bmm multiplies a batch of matrices with fewer than 400 multiply-adds each in plain
# loops, one matrix at a time (ATen's bmm_out_or_baddbmm_), several times slower per multiply-add
# than the batched BLAS call it uses above that (measured here: (E, 11, 3) @ (E, 3, 8) takes about
# twice the time of (E, 16, 3) @ (E, 3, 16))
_SMALL_PRODUCT = 400


def _product_size(tp: o3.TensorProduct, members: list[int], uses: dict) -> int:
    """Multiply-adds per edge of the batched product of a group of input blocks (d * W * T)."""
    l1 = tp.irreps_in1[members[0]].ir.l
    width = sum(2 * l3 + 1 for _, l3 in set().union(*(uses[b] for b in members)))
    return (2 * l1 + 1) * width * sum(tp.irreps_in1[b].mul for b in members)


class FusedEdgeTensorProduct(nn.Module):
    """Same call and result as ``tp(x1, x2, weight)`` for the "uvu" ``tp`` it is built from.
    Shapes: x1 (E, irreps_in1.dim), x2 (E, irreps_in2.dim), weight (E, tp.weight_numel)
    -> (E, irreps_out.dim)."""

    def __init__(self, tp: o3.TensorProduct, skip_l: frozenset = frozenset()):
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
        # ``skip_l``: output irreps of these l are not computed (their columns are 0); the paths kept
        # keep their offsets in the full weight layout
        self.skip_l = frozenset(skip_l)
        kept = [k for k, i in enumerate(ins) if tp.irreps_out[i.i_out].ir.l not in self.skip_l]
        weight_starts, ins = [weight_starts[k] for k in kept], [ins[k] for k in kept]
        self.split_sizes = [mul * ir.dim for mul, ir in tp.irreps_in1]
        source = [-1] * tp.irreps_out.dim  # output column -> column of the concatenated group sums
        scale = [0.0] * tp.irreps_out.dim  # output column -> its path weight
        self.groups: list[_Group] = []
        offset, weight_order = 0, []
        # blocks of equal l with the same couplings (Y irrep, output l) are one group: parity twins
        # of the hidden layers; where the layer keeps one parity only, twins couple differently
        # and stay apart (merging them would compute each one's unused couplings too), unless a
        # product would be small (below): then blocks of equal l are one group all the same
        uses = {b: frozenset((i.i_in2, tp.irreps_out[i.i_out].ir.l) for i in ins if i.i_in1 == b)
                for b in range(len(tp.irreps_in1))}
        grouping: dict[tuple, list[int]] = {}
        for b, (_, ir) in enumerate(tp.irreps_in1):
            if uses[b]:
                grouping.setdefault((ir.l, uses[b]), []).append(b)
        for l1 in {l for l, _ in grouping if l > 0}:
            keys = [key for key in grouping if key[0] == l1]
            if len(keys) > 1 and min(_product_size(tp, grouping[key], uses) for key in keys) < _SMALL_PRODUCT:
                grouping[(l1, None)] = sorted(b for key in keys for b in grouping.pop(key))
        for g, ((l1, _), members) in enumerate(sorted(grouping.items(), key=lambda item: item[1][0])):
            d1 = 2 * l1 + 1
            channel = {b: sum(tp.irreps_in1[c].mul for c in members[:k]) for k, b in enumerate(members)}
            total = sum(tp.irreps_in1[b].mul for b in members)
            # the couplings (Y irrep, l3), sorted by output dimension
            couplings = sorted({(i.i_in2, tp.irreps_out[i.i_out].ir.l) for i in ins if i.i_in1 in members},
                               key=lambda c: (c[1], c[0]))
            column, width = {}, 0
            for c in couplings:
                column[c] = width
                width += 2 * c[1] + 1
            coupling = torch.zeros(tp.irreps_in2.dim, d1, width, dtype=torch.float64)
            for (i2, l3), col in column.items():
                w3j = o3.wigner_3j(l1, tp.irreps_in2[i2].ir.l, l3, dtype=torch.float64)  # [i, j, k]
                coupling[in2_slices[i2], :, col:col + 2 * l3 + 1] = w3j.permute(1, 0, 2)
            # weight of (coupling, channel): the channel's column of its block's path (0 where unused)
            weight_index = torch.zeros(len(couplings), total, dtype=torch.long)
            for k, i in enumerate(ins):
                if i.i_in1 not in members:
                    continue
                mul, l3 = tp.irreps_in1[i.i_in1].mul, tp.irreps_out[i.i_out].ir.l
                c, ch, d = couplings.index((i.i_in2, l3)), channel[i.i_in1], 2 * l3 + 1
                weight_index[c, ch:ch + mul] = weight_starts[k] + torch.arange(mul)
                start, col = out_slices[i.i_out].start, column[(i.i_in2, l3)]
                for u in range(mul):
                    for m in range(d):  # e3nn's layout: channel-major, then the 2l3+1 components
                        if source[start + u * d + m] != -1:
                            raise ValueError("every output irrep must be produced by exactly one path")
                        source[start + u * d + m] = offset + (col + m) * total + ch + u
                        scale[start + u * d + m] = i.path_weight
            self.register_buffer(f"coupling_{g}", coupling.reshape(tp.irreps_in2.dim, d1 * width), persistent=False)
            # output row of the group (W rows: each coupling's 2l3+1) -> its coupling
            self.register_buffer(f"row_coupling_{g}", torch.arange(len(couplings)).repeat_interleave(
                torch.tensor([2 * l3 + 1 for _, l3 in couplings])), persistent=False)
            weight_order.append(weight_index.flatten())
            self.groups.append(_Group(l1, [(b, tp.irreps_in1[b].mul) for b in members], total, width, len(couplings)))
            offset += width * total
        skipped = [c for c, l in enumerate(column_ls(tp.irreps_out).tolist()) if l in self.skip_l]
        for c in skipped:  # a zero column appended to the group sums
            source[c] = offset
        if min(source) < 0:
            raise ValueError("every output irrep must be produced by exactly one path")
        self.pad_zero = bool(skipped)
        self.register_buffer("output_index", torch.tensor(source, dtype=torch.long), persistent=False)
        # the weights in the order the groups read them: (coupling, channel) of each group in turn
        self.register_buffer("weight_order", torch.cat(weight_order), persistent=False)
        self.weight_split = [len(w) for w in weight_order]
        # float64 constant, cast per call (a buffer would be rounded by model.float())
        self._path_weight64 = torch.tensor(scale, dtype=torch.float64)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor,
                dst: torch.Tensor | None = None, n_out: int | None = None, ordered: bool = False) -> torch.Tensor:
        """(E, irreps_out.dim) per-edge products, or with ``dst`` (E,) and ``n_out`` their sums
        per destination, (n_out, irreps_out.dim): the same as index_add of the per-edge result,
        without assembling the (E, irreps_out.dim) tensor. ``ordered``: ``weight`` is already
        ``weight[:, self.weight_order]`` (E, len(weight_order)), e.g. produced by a linear layer
        whose output rows were permuted, which saves gathering the per-edge weights."""
        e = x1.shape[0]
        parts = torch.split(x1, self.split_sizes, dim=1)
        if not ordered:
            weight = weight.index_select(1, self.weight_order)
        group_weights = torch.split(weight, self.weight_split, dim=1)
        sums = []
        for g, (group, w) in enumerate(zip(self.groups, group_weights)):
            d1, total, width = 2 * group.l + 1, group.channels, group.width
            xs = [parts[b].reshape(e, mul, d1) for b, mul in group.members]
            x = torch.cat(xs, dim=1) if len(xs) > 1 else xs[0]  # [E, T, d]
            m = (x2 @ getattr(self, f"coupling_{g}")).reshape(e, d1, width)  # [E, d, W]
            if d1 == 1:
                product = m.reshape(e, width, 1) * x.reshape(e, 1, total)  # [E, W, T]
            else:
                product = torch.bmm(m.transpose(1, 2), x.transpose(1, 2))  # [E, W, T]
            # each coupling's weights copied to its 2l3+1 rows, then one product of equal shapes
            # (a broadcast over the rows runs with an inner loop of T elements: several times slower)
            w = w.reshape(e, group.n_couplings, total).index_select(1, getattr(self, f"row_coupling_{g}"))  # [E, W, T]
            if torch.is_grad_enabled() and (product.requires_grad or w.requires_grad):
                product = (product * w).reshape(e, width * total)
            else:
                product = product.mul_(w).reshape(e, width * total)
            if dst is not None:
                product = product.new_zeros(n_out, width * total).index_add_(0, dst, product)
            sums.append(product)
        if self.pad_zero:
            sums.append(x1.new_zeros(n_out if dst is not None else e, 1))
        out = torch.cat(sums, dim=1) if len(sums) > 1 else sums[0]
        return out.index_select(1, self.output_index) * self._path_weight64.to(device=out.device, dtype=out.dtype)
