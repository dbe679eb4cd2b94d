"""Tensor heads (paper section 3.3): the tensor is the Jacobian of a bilinear response.

The crystal feature G and an applied field x (E, or strain) give a response y (D, or stress)
through an e3nn tensor product, y = (G (x) x) -> y, bilinear with no bias. The tensor is
T = dy/dx. Because y is linear in x, T is computed exactly by evaluating the product on the basis
vectors of x (no autograd, no finite differences) and changing basis to Cartesian:
T = Qy^T J Qx, with J = dy_irr/dx_irr. Finally T is projected onto the tensor type's index
symmetry (e.g. the major symmetry ij<->kl of the elastic tensor). One code path for all orders.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from gmtnet.tensors import TensorType
from gmtnet.tensors.irreps import _change_of_basis, formula_irreps


def head_irreps(irreps: o3.Irreps, ttype: TensorType) -> o3.Irreps:
    """The part of ``irreps`` that the head of ``ttype`` couples to the output: irreps ir with
    ir (x) ir_x containing some ir_y (x the perturbation, y the response)."""
    x_irreps, y_irreps = formula_irreps(ttype.perturbation), formula_irreps(ttype.response)
    wanted = {ir_y for _, ir_y in y_irreps}
    keep = [(mul, ir) for mul, ir in o3.Irreps(irreps)
            if any(set(ir * ir_x) & wanted for _, ir_x in x_irreps)]
    return o3.Irreps(keep)


class TensorHead(nn.Module):
    """(B, irreps_in.dim) crystal features -> (B, 3, ..., 3) Cartesian tensors of ``ttype``."""

    def __init__(self, irreps_in: o3.Irreps, ttype: TensorType):
        super().__init__()
        if ttype.response is None:
            raise ValueError(f"tensor type {ttype.name!r} has no response/perturbation description")
        self.ttype = ttype
        self.x_irreps = formula_irreps(ttype.perturbation)
        self.y_irreps = formula_irreps(ttype.response)
        self.tp = o3.FullyConnectedTensorProduct(irreps_in, self.x_irreps, self.y_irreps)
        self.order_x = len(ttype.perturbation.split("=")[0].replace("-", ""))
        self.order_y = ttype.order - self.order_x
        # float64 constants, cast per call (buffers would be rounded by model.float())
        self._symmetrizer64 = torch.from_numpy(ttype.index_symmetrizer)  # [3^n, 3^n]

    def _bases(self, like: torch.Tensor):
        q_x = _change_of_basis(self.ttype.perturbation).flatten(1).to(device=like.device, dtype=like.dtype)  # [nx, 3^ox]
        q_y = _change_of_basis(self.ttype.response).flatten(1).to(device=like.device, dtype=like.dtype)  # [ny, 3^oy]
        return q_x, q_y, self._symmetrizer64.to(device=like.device, dtype=like.dtype)

    def response(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Cartesian response y (B, 3, ...) to a Cartesian field x (B, 3, ...): for autograd checks."""
        q_x, q_y, _ = self._bases(g)
        x_irr = x.flatten(1) @ q_x.T
        y = self.tp(g, x_irr) @ q_y
        return y.reshape(g.shape[0], *(3,) * self.order_y)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        q_x, q_y, sym = self._bases(g)
        b, nx = g.shape[0], q_x.shape[0]
        basis = torch.eye(nx, dtype=g.dtype, device=g.device)
        y = self.tp(g.repeat_interleave(nx, dim=0), basis.repeat(b, 1)).reshape(b, nx, -1)  # [B, nx, ny]
        t = q_y.T @ y.transpose(1, 2) @ q_x  # [B, 3^oy, 3^ox]
        t = t.reshape(b, -1) @ sym.T
        return t.reshape(b, *self.ttype.shape)
