"""Data-parallel training over processes (torchrun): gloo on CPU, NCCL on GPUs.

Every process holds the whole model and takes a contiguous shard of each global batch. Two
details make a run with W processes compute the same steps as one process with the same global
batch (tests/test_distributed.py checks it to floating-point tolerance):

* the loss of a shard is its summed error divided by the global batch's element count, times W,
  because DistributedDataParallel averages gradients over the W processes;
* batch normalisation uses the statistics of the whole global batch (GlobalBatchNorm1d: sums
  and counts all-reduced with autograd), since every shard holds different crystals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from gmtnet.model.norm import WeightedBatchNorm1d


@dataclass
class DistributedContext:
    """Where this process stands: rank in [0, world_size), and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This process's contiguous part of a global batch's indices (sizes differ by at most 1)."""
        return np.array_split(idx, self.world_size)[self.rank]

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "cpu") -> DistributedContext:
    """A context from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK); without it, or with
    WORLD_SIZE 1, a single-process context. CUDA processes use cuda:LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device, owns_group=owns)


class GlobalBatchNorm1d(WeightedBatchNorm1d):
    """Batch normalisation whose training statistics cover the rows of every process (same
    parameters, buffers and evaluation behaviour as BatchNorm1d). Input (M, C) on each process,
    optionally with row weights (M,) as WeightedBatchNorm1d."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x, weight)
        import warnings

        from torch.distributed.nn.functional import all_reduce

        w = x.new_ones(x.shape[0]) if weight is None else weight
        stats = torch.cat([(w[:, None] * x).sum(0), (w[:, None] * x * x).sum(0), w.sum().reshape(1)])
        with warnings.catch_warnings():  # newer torch calls it deprecated; its successor is private
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(stats)  # differentiable sum over processes
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        return self.normalise(x, mean, stats[c:2 * c] / n - mean * mean, n)


def use_global_batchnorm(model: nn.Module) -> nn.Module:
    """Turn every batch normalisation of ``model`` into a GlobalBatchNorm1d in place (state unchanged)."""
    for module in model.modules():
        if type(module) in (nn.BatchNorm1d, WeightedBatchNorm1d):
            module.__class__ = GlobalBatchNorm1d
    return model
