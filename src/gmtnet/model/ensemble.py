"""An ensemble: the mean prediction of several trained models of one task.

Every member's output already lies in the crystal's invariant subspace (each member projects
it), so their mean does too, and the ensemble snaps it exactly as a single model does: forced
zeros 0.0, forced equalities exact. Rotating the crystal rotates every member's prediction, so
the mean is equivariant as well. Members must build the same graph (task, k, symprec, structure
correction, graph kind and its parameters); their architectures and hyperparameters may differ.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gmtnet.errors import GmtnetError
from gmtnet.graph import CrystalGraph
from gmtnet.model.base import TensorModel
from gmtnet.model.error_bound import member_spread

GRAPH_FIELDS = ("task", "k", "symprec", "refine_structure")


def _graph_fields(model: TensorModel) -> dict:
    return {name: getattr(model.config, name) for name in GRAPH_FIELDS}


class EnsembleModel(TensorModel):
    """Mean of ``members`` (TensorModels of one task with the same graph settings).

    ``config`` is the first member's: it sets the graph, symprec and snapping."""

    def __init__(self, members: list[TensorModel]):
        super().__init__()
        if not members:
            raise GmtnetError("an ensemble needs at least one model")
        first = members[0]
        for m in members[1:]:
            mine, theirs = {**_graph_fields(first), **first.graph_options()}, {**_graph_fields(m), **m.graph_options()}
            for name in mine:
                if mine[name] != theirs.get(name):
                    raise GmtnetError(f"ensemble members differ in {name}: {mine[name]!r} vs {theirs.get(name)!r}")
            if m.output_names != first.output_names:
                raise GmtnetError(f"ensemble members differ in their outputs: {', '.join(first.output_names)} vs "
                                  f"{', '.join(m.output_names)}")
        self.members = nn.ModuleList(members)
        self.config = first.config
        self.ttype = first.ttype

    def forward(self, batches) -> torch.Tensor:
        """(B, 3, ..., 3) mean of the members' outputs; ``batches`` holds one GraphBatch per member
        (see ``collate``), as members may need different point-group data."""
        return torch.stack([m(b) for m, b in zip(self.members, batches)]).mean(dim=0)

    def forward_outputs(self, batches) -> torch.Tensor:
        """(B, K, 3, ..., 3) mean of the members' outputs (``output_names``, shared by all)."""
        return torch.stack([m.forward_outputs(b) for m, b in zip(self.members, batches)]).mean(dim=0)

    def collate(self, graphs: list[CrystalGraph], orbits: bool = False) -> list:
        return [m.collate(graphs, orbits=orbits) for m in self.members]

    def prepare_graphs(self, graphs: list[CrystalGraph], orbits: bool = True) -> None:
        """Attach to the graphs one record holding what every member reads."""
        for m in self.members:
            m.prepare_graphs(graphs, orbits=orbits)

    def graph_settings(self) -> dict:
        return {"ensemble": [m.graph_settings() for m in self.members]}

    def predict_graph_outputs(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                              orbits: bool = True) -> np.ndarray:
        """(N, K, 3, ..., 3) float64: the mean of the members' unsnapped outputs (``orbits`` as for
        a single model), then (with ``snap``, default ``config.snap_output``) projected and snapped
        in float64."""
        return self.predict_graph_outputs_with_spread(graphs, batch_size, snap, orbits)[0]

    @torch.no_grad()
    def predict_graph_outputs_with_spread(self, graphs: list[CrystalGraph], batch_size: int = 64,
                                          snap: bool | None = None, orbits: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(``predict_graph_outputs(...)``, (N, K) spread of the members' unsnapped outputs around
        their mean, label units, per output; ``gmtnet.model.error_bound.member_spread``)."""
        snap = self.config.snap_output if snap is None else snap
        each = np.stack([m.predict_graph_outputs(graphs, batch_size, snap=False, orbits=orbits) for m in self.members])
        mean = each.mean(axis=0)  # [N, K, ...]
        spread = np.stack([member_spread(each[:, :, k]) for k in range(each.shape[2])], axis=1)
        return (self.snap(graphs, mean) if snap else mean), spread

    def compile_kernels(self) -> None:
        for m in self.members:
            m.compile_kernels()
