"""Point-group averaging of crystal features (paper equation 10).

G_sym^l = (1/n_r) sum_R D^l(R) G^l. For each irrep (l, parity) the averaged Wigner matrix is a
(2l+1) x (2l+1) projector (``gmtnet.symmetry.wigner``), computed once per crystal in float64 and
applied here to every channel.
"""

from __future__ import annotations

import torch
from e3nn import o3


def symmetrize_features(g: torch.Tensor, irreps: o3.Irreps, projectors: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
    """Apply per-crystal averaged Wigner matrices. g: (B, irreps.dim); projectors[(l, p)]: (B, 2l+1, 2l+1)."""
    blocks = []
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        block = g[:, sl].reshape(g.shape[0], mul, ir.dim)  # [B, mul, 2l+1]
        blocks.append(torch.einsum("bij,bmj->bmi", projectors[(ir.l, ir.p)], block).reshape(g.shape[0], -1))
    return torch.cat(blocks, dim=1)
