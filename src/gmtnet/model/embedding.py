"""Node and edge embeddings (paper section 3.1 and appendix A.4)."""

from __future__ import annotations

import torch
from torch import nn


class RadialBasis(nn.Module):
    """Gaussian expansion of a scalar: (E,) -> (E, bins), centres evenly spaced in [vmin, vmax]."""

    def __init__(self, vmin: float, vmax: float, bins: int):
        super().__init__()
        self.register_buffer("centres", torch.linspace(vmin, vmax, bins))
        self.gamma = 1.0 / float(self.centres[1] - self.centres[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (x[:, None] - self.centres) ** 2)


class EdgeEmbedding(nn.Module):
    """|v| -> -c/|v| -> RBF -> Linear -> softplus: invariant edge features f^e, (E, edge_dim)."""

    def __init__(self, c: float, vmin: float, vmax: float, bins: int, edge_dim: int):
        super().__init__()
        self.c = c
        self.rbf = RadialBasis(vmin, vmax, bins)
        self.linear = nn.Linear(bins, edge_dim)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.linear(self.rbf(-self.c / lengths)))
