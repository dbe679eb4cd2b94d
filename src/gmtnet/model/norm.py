"""Batch normalisation that can count a row several times (for batches evaluated at one atom per
orbit, where a representative stands for every atom, and its edges for every edge, of its orbit)."""

from __future__ import annotations

import torch
from torch import nn


class WeightedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d with an optional row weight: ``forward(x (M, C), weight (M,) or None)``.

    In training, a row of weight w counts as w identical rows: the normalisation statistics, and
    the running averages, equal BatchNorm1d's on the batch with every row repeated w times. Without
    a weight, and in evaluation, it is BatchNorm1d (same parameters, buffers and state dict)."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is None or not self.training:
            return super().forward(x)
        n = weight.sum()
        w = weight[:, None]
        mean = (w * x).sum(0) / n
        var = (w * (x - mean) ** 2).sum(0) / n  # biased, as BatchNorm normalises with
        return self.normalise(x, mean, var, n)

    def normalise(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Update the running averages (unbiased variance, as BatchNorm1d) and normalise x with
        the batch statistics (mean, biased var) of n rows."""
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.affine else y
