"""e3nn's equivariant ``o3.Linear`` evaluated as one matrix product per rotation order l.

An ``o3.Linear`` without biases maps x (N, irreps_in.dim) to x @ D(w), with D linear in its
weights w and block diagonal over l: an input column of order l only reaches output columns of
the same l (and parity), through one weight times a path normalisation. e3nn's generated code
runs a few operations per path (slice, reshape, einsum, concatenation); with the few hundred rows
of a batch's atoms that overhead, not the arithmetic, is its cost on CPU (about 5x the
product below, docs/performance.md). Here each l is one product x_l @ D_l, D_l
(in columns of order l, out columns of order l) gathered from w with a fixed index and scale:

    D_l = w[index_l] * scale_l        (scale 0 where no weight reaches: a parity mismatch, m != m')

so the function, the gradients with respect to x and w, the parameters and the state dict are
e3nn's (the index and scale follow from its instructions, and are checked against the module
itself at construction; the tests compare both in float64). ``freeze(weight)`` keeps the
gathered matrices of one weight (the inference form, ``gmtnet.model.inference``) until
``unfreeze()``.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from gmtnet.tensors.irreps import column_ls


class BlockLinear(nn.Module):
    """Evaluates a given ``o3.Linear`` (``linear``, biases none): ``forward(x (N, irreps_in.dim),
    weight) -> (N, irreps_out.dim)``, equal to ``linear(input_scale * x)`` for ``weight =
    linear.weight``, except that output irreps of an l in ``skip_l`` are 0 (not computed). It
    holds no parameters (its buffers are not saved); pass the Linear's own weight at each call."""

    def __init__(self, linear: o3.Linear, input_scale: float = 1.0, skip_l: frozenset = frozenset()):
        super().__init__()
        if linear.bias.numel() or not linear.internal_weights:
            raise ValueError("BlockLinear supports o3.Linear with internal weights and no biases")
        n_in, n_out, n_w = linear.irreps_in.dim, linear.irreps_out.dim, linear.weight.numel()
        # D[(u, m) of block i, (w, m) of block o] = path_weight * weight[offset + u * mul_out + w] per
        # instruction (e3nn's layout; checked against the module below)
        ones = torch.zeros(n_in, n_out, dtype=torch.float64)
        index = torch.zeros(n_in, n_out, dtype=torch.long)
        in_slices, out_slices, offset = linear.irreps_in.slices(), linear.irreps_out.slices(), 0
        for ins in linear.instructions:
            mul_in, mul_out = ins.path_shape
            d = linear.irreps_in[ins.i_in].ir.dim
            u, w, m = torch.meshgrid(torch.arange(mul_in), torch.arange(mul_out), torch.arange(d), indexing="ij")
            rows, cols = in_slices[ins.i_in].start + u * d + m, out_slices[ins.i_out].start + w * d + m
            ones[rows, cols] = ins.path_weight
            index[rows, cols] = offset + u * mul_out + w
            offset += mul_in * mul_out
        reached = ones != 0
        in_l, out_l = column_ls(linear.irreps_in), column_ls(linear.irreps_out)
        if reached.any() and bool((in_l[:, None] != out_l[None, :])[reached].any()):
            raise ValueError("o3.Linear couples different l: not block diagonal")
        self.blocks: list[tuple[int, int]] = []  # per l: (in columns, out columns)
        in_order, out_order = [], []
        for l in sorted(set(in_l.tolist()) & set(out_l.tolist()) - set(skip_l)):
            rows, cols = (in_l == l).nonzero().flatten(), (out_l == l).nonzero().flatten()
            if not reached[rows][:, cols].any():  # e.g. only a parity the output lacks
                continue
            k = len(self.blocks)
            self.register_buffer(f"index_{k}", index[rows][:, cols].reshape(-1), persistent=False)
            self.register_buffer(f"scale_{k}", input_scale * ones[rows][:, cols].reshape(-1), persistent=False)
            self.blocks.append((len(rows), len(cols)))
            in_order.append(rows)
            out_order.append(cols)
        in_order = torch.cat(in_order) if in_order else torch.zeros(0, dtype=torch.long)
        out_order = torch.cat(out_order) if out_order else torch.zeros(0, dtype=torch.long)
        # the blocks' columns in l order: slices of x when that is x's own order, else one gather
        self.in_sorted = bool(torch.equal(in_order, torch.arange(n_in)))
        self.register_buffer("in_order", in_order, persistent=False)
        # output: the l blocks concatenated, then e3nn's layout (columns no block reaches are 0)
        position = torch.full((n_out,), len(out_order), dtype=torch.long)
        position[out_order] = torch.arange(len(out_order))
        self.out_complete = len(out_order) == n_out
        self.out_sorted = self.out_complete and bool(torch.equal(out_order, torch.arange(n_out)))
        self.register_buffer("out_position", position, persistent=False)
        self.n_in, self.n_out = n_in, n_out
        self._frozen: list[torch.Tensor] | None = None
        with torch.no_grad():  # the derivation must reproduce e3nn exactly (every entry one weight)
            w = torch.randn(n_w, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
            x = torch.randn(3, n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
            expected = linear(input_scale * x, weight=w)  # e3nn's code in float64 (the weight given)
            expected[:, torch.isin(out_l, torch.tensor(sorted(skip_l), dtype=torch.long))] = 0.0
            if not torch.allclose(self(x, w), expected, rtol=1e-10, atol=1e-12):
                raise ValueError("o3.Linear is not one weight per matrix entry: BlockLinear cannot evaluate it")

    def matrices(self, weight: torch.Tensor) -> list[torch.Tensor]:
        """[D_l (in columns of l, out columns of l)] for ``weight``; the frozen ones if frozen."""
        if self._frozen is not None:
            return self._frozen
        return [(weight.index_select(0, getattr(self, f"index_{k}")) * getattr(self, f"scale_{k}").to(weight.dtype))
                .reshape(n_in, n_out) for k, (n_in, n_out) in enumerate(self.blocks)]

    def freeze(self, weight: torch.Tensor) -> None:
        """Keep the matrices of ``weight`` (detached): later calls use them whatever weight they pass."""
        self._frozen = None
        with torch.no_grad():
            self._frozen = self.matrices(weight)

    def unfreeze(self) -> None:
        self._frozen = None

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if not self.in_sorted:
            x = x.index_select(1, self.in_order)
        parts, start = [], 0
        for d, (n_in, _) in zip(self.matrices(weight), self.blocks):
            parts.append(x[:, start:start + n_in] @ d)
            start += n_in
        if not parts:
            return x.new_zeros(n, self.n_out)
        y = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if self.out_sorted:
            return y
        if not self.out_complete:
            y = torch.cat([y, y.new_zeros(n, 1)], dim=1)
        return y.index_select(1, self.out_position)
