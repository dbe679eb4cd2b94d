"""Wall-clock cost of training steps, shared by the efficiency table and the benchmark."""

from __future__ import annotations

import time

import numpy as np
import torch

from gmtnet.training.optim import make_optimizer


def training_step_times(model, graphs, targets: np.ndarray, batch_size: int = 64,
                        lr: float = 1e-3, weight_decay: float = 1e-5,
                        orbits: bool = False) -> tuple[list[float], list[float]]:
    """(collate seconds, step seconds) for each consecutive batch of ``graphs``.

    A step is forward + Huber loss + backward + AdamW update; collation (with point-group
    projectors computed on a graph's first use) is timed separately. ``targets``: (N, 3, ..., 3)
    labels in the model's units. ``orbits``: batches at one atom per orbit (TrainConfig.orbits).
    The model is left in training mode with updated weights. On CUDA
    each time ends with a synchronisation."""
    y = torch.as_tensor(np.asarray(targets), dtype=next(model.parameters()).dtype)
    optimizer = make_optimizer(model, lr, weight_decay)
    model.train()
    model.prepare_graphs(graphs, orbits=orbits)  # preprocessing: the point-group records, not timed
    collate_times, step_times = [], []
    for start in range(0, len(graphs), batch_size):
        t0 = time.perf_counter()
        batch = model.collate(graphs[start:start + batch_size], orbits=orbits)
        if batch.edge_vec.is_cuda:
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss = torch.nn.functional.huber_loss(model(batch), y[start:start + batch_size].to(batch.edge_vec.device))
        loss.backward()
        optimizer.step()
        if batch.edge_vec.is_cuda:
            torch.cuda.synchronize()
        collate_times.append(t1 - t0)
        step_times.append(time.perf_counter() - t1)
    return collate_times, step_times
