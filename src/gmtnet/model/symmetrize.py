"""Point-group averaging of crystal features (paper equation 10) and of output tensors.

G_sym^l = (1/n_r) sum_R D^l(R) G^l. For each irrep (l, parity) the averaged Wigner matrix is a
(2l+1) x (2l+1) projector, computed once per crystal in float64 and applied to every channel.
"""

from __future__ import annotations

import numpy as np
import torch
from e3nn import o3

from gmtnet.tensors.irreps import float64_default


def averaged_wigner(rotations: np.ndarray, irreps: o3.Irreps) -> dict[tuple[int, int], np.ndarray]:
    """{(l, p): (2l+1, 2l+1) float64 average of D^(l,p)(R) over ``rotations`` (n_r, 3, 3)}."""
    rots = torch.as_tensor(np.asarray(rotations), dtype=torch.float64)
    out = {}
    with float64_default():
        for _, ir in irreps:
            if (ir.l, ir.p) not in out:
                out[(ir.l, ir.p)] = ir.D_from_matrix(rots).mean(dim=0).numpy()
    return out


def symmetrize_features(g: torch.Tensor, irreps: o3.Irreps, projectors: dict[tuple[int, int], torch.Tensor]) -> torch.Tensor:
    """Apply per-crystal averaged Wigner matrices. g: (B, irreps.dim); projectors[(l, p)]: (B, 2l+1, 2l+1)."""
    blocks = []
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        block = g[:, sl].reshape(g.shape[0], mul, ir.dim)  # [B, mul, 2l+1]
        blocks.append(torch.einsum("bij,bmj->bmi", projectors[(ir.l, ir.p)], block).reshape(g.shape[0], -1))
    return torch.cat(blocks, dim=1)
