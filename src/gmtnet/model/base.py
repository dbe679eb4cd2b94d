"""What every gmtnet model (GMTNet and the baselines) shares: turning structures into graphs and
batches, and the user-facing ``predict``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gmtnet.data.structures import as_structure
from gmtnet.graph import CrystalGraph, build_graph
from gmtnet.model.batch import GraphBatch, collate
from gmtnet.tensors import get_tensor_type
from gmtnet.symmetry import (
    CrystalSymmetry,
    PointGroupNeeds,
    crystal_symmetry,
    point_group_data,
    project_each,
    refine_structure,
)


#: ``predict_graphs`` attaches the point-group records of this many batches in one call.
PREPARE_BATCHES = 16


def graph_options(config) -> dict:
    """The graph kind and its parameters (``build_graph`` keywords) of a model config."""
    kind = getattr(config, "graph", "knn")
    if kind == "knn":
        return {"graph": "knn"}
    return {"graph": kind, "band": config.envelope_band, "width": config.radius_width}


def config_graph(config, structure, symmetry: CrystalSymmetry | None = None,
                 refine: bool | None = None) -> CrystalGraph:
    """The graph that a model of ``config`` (k, symprec, refine_structure, graph options) uses
    for a structure; the weights play no part.

    ``refine``: symmetrize the structure within symprec first (``refine_structure``; None: the
    config's ``refine_structure``). ``symmetry``: the structure's CrystalSymmetry if already
    known (by either backend); it is used only when found at the config's symprec. The crystal's
    symmetry comes from ``gmtnet.symmetry.crystal_symmetry``, which replaces a supercell that
    lacks some of its crystal's rotations by its primitive cell in the same frame: the same
    crystal, its whole point group."""
    known = symmetry if symmetry is not None and symmetry.symprec == config.symprec else None
    structure, symmetry = crystal_symmetry(structure, config.symprec, symmetry=known)
    if config.refine_structure if refine is None else refine:
        # the refined lattice is the symmetrized one, so its point group is ``symmetry``'s
        structure = refine_structure(structure, symmetry=symmetry)
    return build_graph(structure, k=config.k, symmetry=symmetry, **graph_options(config))


def output_names(config) -> tuple[str, ...]:
    """The outputs of a model of ``config``: its task's tensor, then with ``parts`` its parts."""
    ttype = get_tensor_type(config.task)
    return (ttype.name, *ttype.parts) if getattr(config, "parts", False) else (ttype.name,)


class TensorModel(nn.Module):
    """Base class. Subclasses set ``config`` (with task, k, symprec, refine_structure, snap_output)
    and ``ttype``, implement ``forward(batch) -> (B, 3, ..., 3)`` in label units, and say which
    point-group data their batches need (``feature_irreps``, ``projects_output``)."""

    config: object
    ttype: object
    feature_irreps = None  # e3nn Irreps to average over the point group, or None
    projects_output = False  # whether batches carry the Reynolds projector of the output
    orbit_lmax = None  # highest l of the features to rotate if the model can run on orbit batches

    def for_inference(self) -> TensorModel:
        """Evaluation mode with every layer's inference form (``gmtnet.model.inference``): the same
        function, faster, without gradients. ``train()``, ``eval()`` and ``load_state_dict`` return
        to the training form. Returns the model."""
        self.eval()
        for module in self.modules():
            if hasattr(module, "enter_inference"):
                module.enter_inference()
        return self

    def _leave_inference(self) -> None:
        for module in self.modules():
            if hasattr(module, "leave_inference"):
                module.leave_inference()

    def train(self, mode: bool = True) -> TensorModel:
        """``nn.Module.train`` (``eval()`` is ``train(False)``), leaving the inference form."""
        super().train(mode)
        self._leave_inference()
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, leaving the inference form (derived from the old weights)."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._leave_inference()
        return result

    def graph(self, structure, symmetry=None, refine: bool | None = None) -> CrystalGraph:
        """The graph this model uses for a structure (``config_graph`` of its config)."""
        return config_graph(self.config, structure, symmetry, refine)

    def graph_options(self) -> dict:
        """The graph kind and its parameters (``build_graph`` keywords) of this model's config."""
        return graph_options(self.config)

    def graph_settings(self) -> dict:
        """What ``graph`` and ``collate`` depend on (the preprocessing cache key)."""
        c = self.config
        return {"arch": type(self).__name__, "k": c.k, "symprec": c.symprec, "refine": c.refine_structure,
                "irreps": str(self.feature_irreps), "task": c.task, **graph_options(c)}

    def constraints(self, graph: CrystalGraph):
        """The SymmetryConstraints of a prepared graph's crystal for this model's tensor type
        (ValueError for a graph without a point group or not prepared for this task)."""
        if graph.point_group is None:
            raise ValueError("graph has no point-group data: prepare it first (model.prepare_graphs)")
        return graph.point_group.constraints_of(self.ttype)

    def point_group_needs(self, orbits: bool = True) -> PointGroupNeeds:
        """What this model reads from a crystal's point-group record: the projector of its tensor
        type (snapping, output projection), its features' averaged Wigner matrices, and with
        ``orbits`` the orbit data of its orbit batches."""
        return PointGroupNeeds(ttype=self.ttype, irreps=self.feature_irreps,
                               orbit_lmax=self.orbit_lmax if orbits else None)

    def prepare_graph(self, graph: CrystalGraph) -> None:
        """Attach to ``graph`` the point-group record this model's batches read
        (``gmtnet.symmetry.point_group_data``), e.g. in a DataLoader worker."""
        self.prepare_graphs([graph])

    def prepare_graphs(self, graphs: list[CrystalGraph], orbits: bool = True) -> None:
        """``prepare_graph`` for many graphs, the records' parts computed for all of them together
        (``orbits=False``: without the orbit data). A graph's record is replaced by one that also
        holds what this model needs; one already holding it is kept."""
        self._attach(graphs, self.point_group_needs(orbits))

    @staticmethod
    def _attach(graphs: list[CrystalGraph], needs: PointGroupNeeds) -> None:
        for graph, record in zip(graphs, point_group_data(graphs, needs)):
            graph.point_group = record

    def collate(self, graphs: list[CrystalGraph], orbits: bool = False) -> GraphBatch:
        """A batch for this model of graphs prepared for it (``prepare_graphs``); with ``orbits``
        (and a model that supports it) grouped by orbit. See ``batch.collate``."""
        param = next(self.parameters())
        return collate(graphs, self.feature_irreps, self.ttype if self.projects_output else None,
                       dtype=param.dtype, device=param.device, orbit_lmax=self.orbit_lmax if orbits else None)

    def prepared_batch(self, graphs: list[CrystalGraph], orbits: bool = False) -> GraphBatch:
        """``prepare_graphs`` then ``collate``: a batch of graphs that may not be prepared yet."""
        self.prepare_graphs(graphs, orbits=orbits)
        return self.collate(graphs, orbits=orbits)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The tensors the model predicts: its task's, then with ``config.parts`` the parts whose
        sum it is (e.g. "dielectric", "dielectric_electronic", "dielectric_ionic")."""
        return output_names(self.config)

    def forward_outputs(self, batch) -> torch.Tensor:
        """(B, K, 3, ..., 3): the K outputs ``output_names``; a model without parts has one."""
        return self(batch)[:, None]

    @torch.no_grad()
    def predict_graph_outputs(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                              orbits: bool = True) -> np.ndarray:
        """(N, K, 3, ..., 3) float64 outputs (``output_names``) in label units for prebuilt graphs,
        by the inference form (``for_inference``; the model returns to its training or evaluation
        form afterwards).

        With ``snap`` (default ``config.snap_output``) each result is projected in float64 and
        snapped so that forced zeros are exactly 0.0 and forced equalities exact. With ``orbits``
        a model that supports it is evaluated at one atom per orbit of symmetry-equivalent atoms
        (the same function for a symmetric crystal; ``gmtnet.symmetry.orbits``); ``orbits=False``
        evaluates every atom."""
        snap = self.config.snap_output if snap is None else snap
        was_training = self.training
        self.for_inference()
        try:
            out = []
            for start in range(0, len(graphs), batch_size):
                if start % (PREPARE_BATCHES * batch_size) == 0:  # records of several batches in one call
                    self.prepare_graphs(graphs[start:start + PREPARE_BATCHES * batch_size], orbits=orbits)
                chunk = graphs[start:start + batch_size]
                t = self.forward_outputs(self.collate(chunk, orbits=orbits)).double().cpu().numpy()
                out.append(self.snap(chunk, t) if snap else t)
            return np.concatenate(out) if out else np.zeros((0, len(self.output_names), *self.ttype.shape))
        finally:
            self.train(was_training)

    def predict_graph_outputs_with_spread(self, graphs: list[CrystalGraph], batch_size: int = 64,
                                          snap: bool | None = None, orbits: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(``predict_graph_outputs(...)``, (N, K) spread of an ensemble's members per output in
        label units): a single model has none, zeros (see ``gmtnet.model.error_bound``)."""
        return (self.predict_graph_outputs(graphs, batch_size, snap, orbits),
                np.zeros((len(graphs), len(self.output_names))))

    def predict_graphs(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                       orbits: bool = True) -> np.ndarray:
        """(N, 3, ..., 3) float64 tensors of the task in label units (the first output of
        ``predict_graph_outputs``, which says how)."""
        return self.predict_graph_outputs(graphs, batch_size, snap, orbits)[:, 0]

    def predict_graphs_with_spread(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                                   orbits: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(``predict_graphs(...)``, (N,) spread of an ensemble's members in label units): a single
        model has none, zeros (see ``gmtnet.model.error_bound``)."""
        tensors, spread = self.predict_graph_outputs_with_spread(graphs, batch_size, snap, orbits)
        return tensors[:, 0], spread[:, 0]

    def snap(self, graphs: list[CrystalGraph], tensors: np.ndarray) -> np.ndarray:
        """(N, [K,] 3, ..., 3) float64: each tensor (each of K outputs, which share the tensor
        type's form) projected onto its crystal's invariant subspace and snapped (forced zeros
        exactly 0.0, forced equalities exact). The graphs' records gain the projector of this
        model's tensor type where they lack it."""
        self._attach(graphs, PointGroupNeeds(ttype=self.ttype))
        constraints = [self.constraints(g) for g in graphs]
        if tensors.ndim == self.ttype.order + 1:
            return project_each(constraints, tensors)
        return np.stack([project_each(constraints, tensors[:, k]) for k in range(tensors.shape[1])], axis=1)

    def predict(self, structures, batch_size: int = 64, orbits: bool = True, return_spread: bool = False,
                all_outputs: bool = False):
        """(N, 3, ..., 3) float64 tensors in label units, each in its structure's own Cartesian frame
        (graphs are built one batch at a time; see ``predict_graph_outputs`` for snapping and
        ``orbits``); with ``all_outputs`` (N, K, 3, ..., 3), every output of ``output_names``.
        With ``return_spread``: (tensors, (N,) or with ``all_outputs`` (N, K) spread of an
        ensemble's members, zeros for a single model)."""
        structures = [as_structure(s) for s in structures]
        out = [self.predict_graph_outputs_with_spread([self.graph(s) for s in structures[start:start + batch_size]],
                                                      batch_size, orbits=orbits)
               for start in range(0, len(structures), batch_size)]
        k = len(self.output_names)
        tensors = np.concatenate([t for t, _ in out]) if out else np.zeros((0, k, *self.ttype.shape))
        spread = np.concatenate([s for _, s in out]) if out else np.zeros((0, k))
        if not all_outputs:
            tensors, spread = tensors[:, 0], spread[:, 0]
        return (tensors, spread) if return_spread else tensors

    def compile_kernels(self) -> None:
        """Compile the hot parts with torch.compile (shapes dynamic); the default does nothing."""

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
