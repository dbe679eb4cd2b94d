"""Training losses on scaled labels (labels divided by the run's label scale).

Both losses are written as a sum over this process's crystals divided by a global count, so that
data-parallel shards add up to the loss of the whole global batch."""

from __future__ import annotations

import torch

LOSSES = ("huber", "fnorm")


def shard_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, n_global: int, huber_delta: float = 1.0) -> torch.Tensor:
    """The loss of the global batch restricted to this shard.

    Args:
        pred, target: (n_shard, 3, ..., 3) scaled tensors.
        kind: "huber": Huber loss of every entry, averaged over the global batch's entries;
            "fnorm": Frobenius norm of each crystal's error, averaged over the global batch's crystals.
        n_global: crystals in the global batch (the shards of all processes together).
    Returns: a scalar; summed over the shards it is the global batch's loss.
    """
    if kind == "huber":
        total = torch.nn.functional.huber_loss(pred, target, delta=huber_delta, reduction="sum")
        return total / (n_global * pred[0].numel())
    if kind == "fnorm":
        squared = (pred - target).flatten(1).square().sum(dim=1)
        # the tiny offset keeps the gradient finite for an exact fit
        return torch.sqrt(squared + 1e-12).sum() / n_global
    raise ValueError(f"unknown loss {kind!r}: expected one of {', '.join(LOSSES)}")


def outputs_loss(pred: torch.Tensor, target: torch.Tensor, known: torch.Tensor, kind: str, n_global: int,
                 huber_delta: float = 1.0, part_weight: float = 1.0) -> torch.Tensor:
    """The loss of a model with several outputs (the tensor, then its parts), restricted to this
    shard: ``shard_loss`` of the tensor, plus ``part_weight`` times ``shard_loss`` of each part
    over the crystals whose part label is known (each still divided by the global count, so a
    crystal without parts adds nothing for them).

    Args:
        pred, target: (n_shard, K, 3, ..., 3) scaled outputs; output 0 is the tensor itself.
        known: (n_shard, K) bool, which labels exist (output 0 always does).
    Returns: a scalar; with K = 1 exactly ``shard_loss`` of the tensor.
    """
    loss = shard_loss(pred[:, 0], target[:, 0], kind, n_global, huber_delta)
    for k in range(1, pred.shape[1]):
        rows = known[:, k]
        if bool(rows.any()):
            loss = loss + part_weight * shard_loss(pred[rows, k], target[rows, k], kind, n_global, huber_delta)
    return loss
