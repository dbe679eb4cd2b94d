"""AdamW with the paper's settings and a polynomial learning-rate schedule."""

from __future__ import annotations

import torch
from torch import nn

NO_DECAY_MODULES = (nn.BatchNorm1d, nn.LayerNorm)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with ``weight_decay``; biases and normalisation parameters without."""
    no_decay: set[int] = set()
    for module in model.modules():
        if isinstance(module, NO_DECAY_MODULES):
            no_decay.update(id(p) for p in module.parameters(recurse=False))
        for name, p in module.named_parameters(recurse=False):
            if name.endswith("bias"):
                no_decay.add(id(p))
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr)


def polynomial_schedule(optimizer, total_steps: int, lr: float, lr_end: float, power: float, done_steps: int = -1):
    """LambdaLR: lr at step t is (lr - lr_end) (1 - t/T)^power + lr_end, then lr_end.
    ``done_steps`` resumes the schedule after that many steps (the optimizer must come from a
    checkpoint of a run that used this schedule)."""
    total_steps = max(1, total_steps)

    def factor(step: int) -> float:
        frac = min(step, total_steps) / total_steps
        return ((lr - lr_end) * (1.0 - frac) ** power + lr_end) / lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch=done_steps)
