"""What every gmtnet model (GMTNet and the baselines) shares: turning structures into graphs and
batches, and the user-facing ``predict``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gmtnet.data.structures import as_structure
from gmtnet.graph import CrystalGraph, build_graph
from gmtnet.model.batch import GraphBatch, collate, fill_caches, graph_constraints
from gmtnet.symmetry import analyze_symmetry, crystal_symmetry, project_each, refine_structure


def graph_options(config) -> dict:
    """The graph kind and its parameters (``build_graph`` keywords) of a model config."""
    kind = getattr(config, "graph", "knn")
    if kind == "knn":
        return {"graph": "knn"}
    return {"graph": kind, "band": config.envelope_band, "width": config.radius_width}


def config_graph(config, structure, symmetry=None, refine: bool | None = None) -> CrystalGraph:
    """The graph that a model of ``config`` (k, symprec, refine_structure, graph options) uses
    for a structure; the weights play no part.

    ``refine``: symmetrize the structure within symprec first (``refine_structure``; None: the
    config's ``refine_structure``). ``symmetry``: the structure's CrystalSymmetry if already
    known; it is reused only when computed at the config's symprec (by either backend); otherwise
    spglib analyses it. A supercell that lacks some of its crystal's rotations is replaced by its
    primitive cell in the same frame (``gmtnet.symmetry.crystal_symmetry``): the same crystal,
    its whole point group."""
    if symmetry is None or symmetry.symprec != config.symprec:
        symmetry = analyze_symmetry(structure, config.symprec)
    structure, symmetry = crystal_symmetry(structure, symmetry=symmetry)
    if config.refine_structure if refine is None else refine:
        # the refined lattice is the symmetrized one, so its point group is ``symmetry``'s
        structure = refine_structure(structure, symmetry=symmetry)
    return build_graph(structure, k=config.k, symmetry=symmetry, **graph_options(config))


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
        """The SymmetryConstraints of a graph's crystal for this model's tensor type."""
        return graph_constraints(graph, self.ttype)

    def prepare_graph(self, graph: CrystalGraph) -> None:
        """Compute and cache on ``graph`` the point-group data this model's batches use (the
        output projector, the orbit data and the averaged Wigner matrices), e.g. in a DataLoader
        worker."""
        self.prepare_graphs([graph])

    def prepare_graphs(self, graphs: list[CrystalGraph], orbits: bool = True) -> None:
        """``prepare_graph`` for many graphs, the per-crystal matrices of all computed together
        (``orbits=False``: without the orbit data)."""
        fill_caches(graphs, self.feature_irreps, self.ttype, self.orbit_lmax if orbits else None)

    def prepare_graphs_in_chunks(self, graphs: list[CrystalGraph], batch_size: int, orbits: bool = True) -> None:
        """``prepare_graphs`` for up to 16 batches of graphs per call (not one call per batch, nor
        one for an unbounded list)."""
        for start in range(0, len(graphs), 16 * batch_size):
            self.prepare_graphs(graphs[start:start + 16 * batch_size], orbits=orbits)

    def collate(self, graphs: list[CrystalGraph], orbits: bool = False, cache_orbits: bool = True) -> GraphBatch:
        """A batch for this model; with ``orbits`` (and a model that supports it) grouped by orbit,
        the orbit data cached on the graphs (``cache_orbits=False``: computed for this batch
        unless every graph has it cached; see ``batch.collate``)."""
        param = next(self.parameters())
        return collate(graphs, self.feature_irreps, self.ttype if self.projects_output else None,
                       dtype=param.dtype, device=param.device, orbit_lmax=self.orbit_lmax if orbits else None,
                       cache_orbits=cache_orbits)

    @torch.no_grad()
    def predict_graphs(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                       orbits: bool = True) -> np.ndarray:
        """(N, 3, ..., 3) float64 tensors in label units for prebuilt graphs, by the inference form
        (``for_inference``; the model returns to its training or evaluation form afterwards).

        With ``snap`` (default ``config.snap_output``) each result is projected in float64 and
        snapped so that forced zeros are exactly 0.0 and forced equalities exact. With ``orbits``
        a model that supports it is evaluated at one atom per orbit of symmetry-equivalent atoms
        (the same function for a symmetric crystal; ``gmtnet.graph.orbits``); ``orbits=False``
        evaluates every atom."""
        snap = self.config.snap_output if snap is None else snap
        was_training = self.training
        self.for_inference()
        try:
            # the point-group data of many graphs in one call; the orbit data is computed per
            # batch, straight into the batch (unless the graphs have it cached)
            self.prepare_graphs_in_chunks(graphs, batch_size, orbits=False)
            out = []
            for start in range(0, len(graphs), batch_size):
                chunk = graphs[start:start + batch_size]
                t = self(self.collate(chunk, orbits=orbits, cache_orbits=False)).double().cpu().numpy()
                out.append(self.snap(chunk, t) if snap else t)
            return np.concatenate(out) if out else np.zeros((0, *self.ttype.shape))
        finally:
            self.train(was_training)

    def predict_graphs_with_spread(self, graphs: list[CrystalGraph], batch_size: int = 64, snap: bool | None = None,
                                   orbits: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(``predict_graphs(...)``, (N,) spread of an ensemble's members in label units): a single
        model has none, zeros (see ``gmtnet.model.error_bound``)."""
        return self.predict_graphs(graphs, batch_size, snap, orbits), np.zeros(len(graphs))

    def snap(self, graphs: list[CrystalGraph], tensors: np.ndarray) -> np.ndarray:
        """(N, 3, ..., 3) float64: each tensor projected onto its crystal's invariant subspace and
        snapped (forced zeros exactly 0.0, forced equalities exact)."""
        fill_caches(graphs, ttype=self.ttype)
        return project_each([self.constraints(g) for g in graphs], tensors)

    def predict(self, structures, batch_size: int = 64, orbits: bool = True, return_spread: bool = False):
        """(N, 3, ..., 3) float64 tensors in label units, each in its structure's own Cartesian frame
        (graphs are built one batch at a time; see ``predict_graphs`` for snapping and ``orbits``).
        With ``return_spread``: (tensors, (N,) spread of an ensemble's members, zeros for a single
        model)."""
        structures = [as_structure(s) for s in structures]
        out = [self.predict_graphs_with_spread([self.graph(s) for s in structures[start:start + batch_size]],
                                               batch_size, orbits=orbits)
               for start in range(0, len(structures), batch_size)]
        tensors = np.concatenate([t for t, _ in out]) if out else np.zeros((0, *self.ttype.shape))
        spread = np.concatenate([s for _, s in out]) if out else np.zeros(0)
        return (tensors, spread) if return_spread else tensors

    def compile_kernels(self) -> None:
        """Compile the hot parts with torch.compile (shapes dynamic); the default does nothing."""

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
