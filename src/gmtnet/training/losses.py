"""Training losses on scaled labels (labels divided by the run's label scale).

Every loss is written as a sum over this process's crystals divided by a global count, so that
data-parallel shards add up to the loss of the whole global batch."""

from __future__ import annotations

import torch

LOSSES = ("huber", "fnorm", "relative", "hybrid")


def shard_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, n_global: int, huber_delta: float = 1.0,
               floor: float = 1.0) -> torch.Tensor:
    """The loss of the global batch restricted to this shard.

    Args:
        pred, target: (n_shard, 3, ..., 3) scaled tensors.
        kind: "huber": Huber loss of every entry, averaged over the global batch's entries;
            "fnorm": Frobenius norm of each crystal's error, averaged over the global batch's
            crystals; "relative": each crystal's Frobenius error divided by its label's norm plus
            ``floor``, ||P - Y|| / (||Y|| + floor), averaged: every crystal weighs alike whatever
            its size (a crystal whose tensor is predicted zero costs about 1), so the few huge
            tensors cannot teach the network to shrink the rest; "hybrid": fnorm + relative.
        n_global: crystals in the global batch (the shards of all processes together).
        floor: the relative loss's floor, in scaled units (labels smaller than it count as it).
    Returns: a scalar; summed over the shards it is the global batch's loss.
    """
    if kind == "huber":
        total = torch.nn.functional.huber_loss(pred, target, delta=huber_delta, reduction="sum")
        return total / (n_global * pred[0].numel())
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}: expected one of {', '.join(LOSSES)}")
    # the tiny offset keeps the gradient finite for an exact fit
    error = torch.sqrt((pred - target).flatten(1).square().sum(dim=1) + 1e-12)
    if kind == "fnorm":
        return error.sum() / n_global
    relative = error / (target.flatten(1).norm(dim=1) + floor)
    return (relative if kind == "relative" else error + relative).sum() / n_global


def outputs_loss(pred: torch.Tensor, target: torch.Tensor, known: torch.Tensor, kind: str, n_global: int,
                 huber_delta: float = 1.0, part_weight: float = 1.0, floor: float = 1.0) -> torch.Tensor:
    """The loss of a model with several outputs (the tensor, then its parts), restricted to this
    shard: ``shard_loss`` of the tensor, plus ``part_weight`` times ``shard_loss`` of each part
    over the crystals whose part label is known (each still divided by the global count, so a
    crystal without parts adds nothing for them).

    Args:
        pred, target: (n_shard, K, 3, ..., 3) scaled outputs; output 0 is the tensor itself.
        known: (n_shard, K) bool, which labels exist (output 0 always does).
    Returns: a scalar; with K = 1 exactly ``shard_loss`` of the tensor.
    """
    loss = shard_loss(pred[:, 0], target[:, 0], kind, n_global, huber_delta, floor)
    for k in range(1, pred.shape[1]):
        rows = known[:, k]
        if bool(rows.any()):
            loss = loss + part_weight * shard_loss(pred[rows, k], target[rows, k], kind, n_global, huber_delta, floor)
    return loss
