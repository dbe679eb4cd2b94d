"""Comformer-style invariant node update (paper equations 1-2)."""

from __future__ import annotations

import math

import torch
from torch import nn


class InvariantLayer(nn.Module):
    """f_i <- softplus(f_i + BN(sum_j msg_ji)), msg_ji = sigmoid(BN(alpha_ji)) * xi_V(v_ji),
    alpha_ji = q_ji * xi_K(k_ji) / sqrt(d), q = LN_Q(f_i), k = [LN_K f_i | LN_K f_j],
    v = [LN_V f_i | LN_V f_j | LN_E f^e_ji]. Shapes: nodes (N, d), edges (E, d_e)."""

    def __init__(self, node_dim: int, edge_dim: int):
        super().__init__()
        d = node_dim
        self.lin_q = nn.Linear(d, d)
        self.lin_k = nn.Linear(d, d)
        self.lin_v = nn.Linear(d, d)
        self.lin_e = nn.Linear(edge_dim, d)
        self.xi_k = nn.Sequential(nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.xi_v = nn.Sequential(nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.bn_alpha = nn.BatchNorm1d(d)
        self.bn_msg = nn.BatchNorm1d(d)
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, f: torch.Tensor, f_edge: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        k_all, v_all = self.lin_k(f), self.lin_v(f)
        q = self.lin_q(f)[dst]  # [E, d]
        key = self.xi_k(torch.cat([k_all[dst], k_all[src]], dim=-1))  # [E, d]
        value = self.xi_v(torch.cat([v_all[dst], v_all[src], self.lin_e(f_edge)], dim=-1))  # [E, d]
        alpha = q * key * self.scale
        msg = torch.sigmoid(self.bn_alpha(alpha)) * value  # [E, d]
        agg = torch.zeros_like(f).index_add_(0, dst, msg)  # [N, d]
        return nn.functional.softplus(f + self.bn_msg(agg))
