"""From structures to tensors: symmetry analysis, the shipped (or given) models, derived properties.

Every tensor is returned in the Cartesian frame of the structure as given (pymatgen's convention:
lattice vectors as rows of ``structure.lattice.matrix``), in label units (dielectric: relative
permittivity; piezoelectric: C/m^2; elastic: GPa), with forced zeros exactly 0.0.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader

from gmtnet.data.structures import as_structure, is_structure_text, vacuum_warning, validate_structure
from gmtnet.errors import GmtnetError, StructureError
from gmtnet.model.base import config_graph, graph_options, output_names
from gmtnet.model.error_bound import model_error_bounds
from gmtnet.prediction.pretrained import load_pretrained, pretrained_config
from gmtnet.prediction.properties import derived_properties
from gmtnet.symmetry import PREDICTION_BACKEND, check_backend, crystal_symmetry, refine_structure
from gmtnet.tensors import get_tensor_type, parent_type, to_pymatgen, to_voigt
from gmtnet.utils.progress import progress_bar

TASKS = ("dielectric", "piezoelectric", "elastic")


class PredictionWarning(UserWarning):
    """A prediction was made, but the input is not what the models know (e.g. a slab)."""

MAX_ATOMS = 500  # graph and symmetry work grow with the cell; see README "Limits"


@dataclass
class CrystalPrediction:
    """Predicted tensors of one crystal, or the reason it could not be predicted.

    Attributes:
        source: the file path, or "structure <i>" for in-memory input.
        formula, spacegroup_symbol, spacegroup_number, point_group, crystal_system: from the
            Predictor's symmetry_backend (moyopy unless told otherwise) at ``symprec``.
        symprec: the symmetry tolerance used (the models', Angstrom; 1e-3 for the shipped ones).
        refined: whether the structure was symmetrized within symprec before its graph.
        tensors: {name: Cartesian tensor (3,)*order}, float64, in the input frame: one per task,
            and for a model that predicts parts (the shipped dielectric model) each part too,
            e.g. "dielectric" (static total) = "dielectric_electronic" + "dielectric_ionic".
        independent: {name: names of the independent components (one per equality group)}.
        properties: {name: derived quantities} (see gmtnet.prediction.properties).
        error_bounds: {name: bound on the Frobenius norm of the tensor's error, label units} for
            the tensors whose model carries a calibrated bound (``gmtnet.model.error_bound``; the
            shipped models' hold for 90% of crystals like their validation crystals);
            ``error_bound_coverage`` {name: that fraction}.
        error: one line when the structure was rejected; then everything else is empty.
        warnings: lines about a prediction made but not to be trusted as a bulk crystal's, e.g.
            vacuum in the cell (a slab or a molecule; ``gmtnet.data.structures.vacuum_warning``).
    """

    source: str
    formula: str = ""
    spacegroup_symbol: str = ""
    spacegroup_number: int = 0
    point_group: str = ""
    crystal_system: str = ""
    n_atoms: int = 0
    symprec: float = 0.0
    refined: bool = False
    tensors: dict = field(default_factory=dict)
    independent: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    error_bounds: dict = field(default_factory=dict)
    error_bound_coverage: dict = field(default_factory=dict)
    error: str | None = None
    warnings: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def voigt(self, task: str) -> np.ndarray:
        """Voigt form (pymatgen's order, no engineering factors): 3x3, 3x6 or 6x6."""
        return to_voigt(self.tensors[task], get_tensor_type(task))

    def display_matrix(self, task: str) -> np.ndarray:
        """The 2D form shown in tables and CSV: the 3x3 tensor for order 2, else the Voigt matrix."""
        return self.tensors[task] if get_tensor_type(task).order == 2 else self.voigt(task)

    def pymatgen(self, task: str):
        """pymatgen object: Tensor (dielectric), PiezoTensor, ElasticTensor."""
        return to_pymatgen(self.tensors[task], get_tensor_type(task))

    def to_dict(self) -> dict:
        d = {"source": self.source, "error": self.error, "warnings": list(self.warnings)}
        if self.ok:
            d.update(formula=self.formula, spacegroup_symbol=self.spacegroup_symbol,
                     spacegroup_number=self.spacegroup_number, point_group=self.point_group,
                     crystal_system=self.crystal_system, n_atoms=self.n_atoms, symprec=self.symprec,
                     refined=self.refined,
                     tensors={t: {"cartesian": v.tolist(), "voigt": self.voigt(t).tolist(),
                                  "unit": get_tensor_type(t).unit, "independent": self.independent[t],
                                  "error_bound": self.error_bounds.get(t),
                                  "error_bound_coverage": self.error_bound_coverage.get(t)}
                              for t, v in self.tensors.items()},
                     properties=self.properties)
        return d


def _tasks(task: str) -> tuple[str, ...]:
    """The tasks (models) ``task`` needs: all three, or the one that predicts it (a part's)."""
    return TASKS if task == "all" else (parent_type(task).name,)


@dataclass
class PreparedCrystal:
    """A crystal read, checked and preprocessed (symmetry, its graphs), waiting for the models:
    the part of prediction that DataLoader workers do. The point-group records the models read
    (projectors, Wigner matrices, orbits; ten times the graphs' own size) are attached for whole
    batches in ``finish``, so they are never sent between processes."""

    prediction: CrystalPrediction
    graphs: dict  # {task: CrystalGraph}


class Predictor:
    """Holds one model per task (the shipped ones by default) and predicts crystals in batches.

    Prediction has two phases: ``prepare`` (read, validate, symmetry, graph and projectors; per
    crystal, CPU, run in DataLoader workers by ``stream``) and ``finish`` (the models on batches
    of prepared crystals, then derived properties)."""

    def __init__(self, task: str = "all", models: dict | None = None, batch_size: int = 64,
                 symmetry_backend: str = PREDICTION_BACKEND, orbits: bool = True, refine: bool = True):
        """``symmetry_backend``: "moyopy" (default) or "spglib" (the benchmark's definition; the
        same point group except for crystals at the tolerance, see gmtnet.symmetry.point_group).
        ``orbits``: evaluate the networks at one atom per orbit of symmetry-equivalent atoms
        (default; the same function for a symmetric crystal, see gmtnet.symmetry.orbits), or at
        every atom. ``refine``: symmetrize each structure within the models' symprec before its
        graph (default; ``gmtnet.symmetry.refine_structure``: same frame and atom order), so
        that every structure that has the same space group at symprec gets a prediction that
        moves continuously with it; False: the graph of the structure as
        given (the models' own ``refine_structure`` setting is not applied either)."""
        self.tasks = _tasks(task)
        models = dict(models or {})
        for name, model in models.items():
            if getattr(model, "config", None) is not None and model.config.task != name:
                raise GmtnetError(f"the model given for {name} predicts {model.config.task} tensors")
        self._given = {t: models[t] for t in self.tasks if t in models}
        self._models: dict | None = None
        self._bounds: dict | None = None
        # what preparing a crystal needs (graph settings); the shipped networks are built when
        # first needed, so that worker processes can start on the structures meanwhile
        self.configs = {t: self._given[t].config if t in self._given else pretrained_config(t) for t in self.tasks}
        #: Every tensor a prediction holds: each task's, then its parts where its model has them.
        self.output_names = tuple(name for config in self.configs.values() for name in output_names(config))
        self.batch_size = batch_size
        try:  # refused here, before any structure, rather than as an error row per structure
            check_backend(symmetry_backend)
        except ValueError as exc:
            raise GmtnetError(str(exc)) from None
        self.symmetry_backend = symmetry_backend
        self.orbits = orbits
        self.refine = refine

    @property
    def models(self) -> dict:
        """{task: model}: the given models, and the shipped ones (built on first use)."""
        if self._models is None:
            self._models = {t: self._given[t] if t in self._given else load_pretrained(t) for t in self.tasks}
        return self._models

    def _load(self, item):
        structure = as_structure(item)
        validate_structure(structure)
        if len(structure) > MAX_ATOMS:
            raise StructureError(f"{len(structure)} atoms in the cell; the limit is {MAX_ATOMS} "
                                 "(the graph keeps 16+ edges per atom and symmetry analysis grows with the cell)")
        return structure

    @staticmethod
    def _failure(source: str, exc: BaseException) -> CrystalPrediction:
        if isinstance(exc, MemoryError):
            return CrystalPrediction(source=source, error="out of memory for this structure")
        return CrystalPrediction(source=source, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def prepare(self, item, source: str) -> PreparedCrystal | CrystalPrediction:
        """The crystal ready for the models, or a CrystalPrediction carrying the one-line reason
        it cannot be predicted."""
        try:
            structure = self._load(item)
            pred = CrystalPrediction(source=source, formula=structure.composition.reduced_formula,
                                     n_atoms=len(structure))
            vacuum = vacuum_warning(structure)
            if vacuum:
                pred.warnings.append(vacuum)
            first = next(iter(self.configs.values()))
            structure, sym = crystal_symmetry(structure, first.symprec, backend=self.symmetry_backend)
            pred.symprec, pred.refined = sym.symprec, self.refine
            if self.refine:  # moved within symprec onto its exactly symmetric form (same frame, atoms)
                structure = refine_structure(structure, symmetry=sym)
            pred.spacegroup_symbol, pred.spacegroup_number = sym.international, sym.spacegroup_number
            pred.point_group, pred.crystal_system = sym.point_group, sym.crystal_system
            by_settings, graphs = {}, {}
            for task, config in self.configs.items():
                key = (config.k, config.symprec, *sorted(graph_options(config).items()))
                if key not in by_settings:
                    by_settings[key] = config_graph(config, structure, symmetry=sym, refine=False)
                graphs[task] = by_settings[key]
            return PreparedCrystal(pred, graphs)
        except (GmtnetError, ValueError, OSError, np.linalg.LinAlgError, MemoryError) as exc:
            return self._failure(source, exc)  # one line per bad item; the batch goes on

    def finish(self, prepared: list) -> list[CrystalPrediction]:
        """Run the models on the prepared crystals of ``prepared`` (failures pass through), in
        batches; a crystal whose batch fails is retried alone, so only it gets the error."""
        ready = [p for p in prepared if isinstance(p, PreparedCrystal)]
        if ready:
            self.models  # noqa: B018 - the shipped networks, built here on first use
        failed: dict[int, CrystalPrediction] = {}
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start:start + self.batch_size]
            try:
                self._run_models(chunk)
            except (GmtnetError, ValueError, RuntimeError, np.linalg.LinAlgError, MemoryError):
                for p in chunk:
                    try:
                        self._run_models([p])
                    except (GmtnetError, ValueError, RuntimeError, np.linalg.LinAlgError, MemoryError) as exc:
                        failed[id(p)] = self._failure(p.prediction.source, exc)
        out = []
        for p in prepared:
            if not isinstance(p, PreparedCrystal):
                out.append(p)
            elif id(p) in failed:
                out.append(failed[id(p)])
            else:
                try:
                    p.prediction.properties = derived_properties(p.prediction.tensors)
                    out.append(p.prediction)
                except (ValueError, np.linalg.LinAlgError) as exc:
                    out.append(self._failure(p.prediction.source, exc))
        return out

    @property
    def error_bounds(self) -> dict:
        """{output name: ErrorBound}: the calibrated bounds the models carry (``output_names``
        without one are absent)."""
        if self._bounds is None:
            self._bounds = {name: b for m in self.models.values() for name, b in model_error_bounds(m).items()}
        return self._bounds

    def _run_models(self, chunk: list[PreparedCrystal]) -> None:
        for task, model in self.models.items():
            tensors, spread = model.predict_graph_outputs_with_spread([p.graphs[task] for p in chunk],
                                                                      batch_size=self.batch_size, orbits=self.orbits)
            for p, outputs in zip(chunk, tensors):
                independent = model.constraints(p.graphs[task]).independent_components
                for name, t in zip(model.output_names, outputs):
                    p.prediction.tensors[name] = t
                    p.prediction.independent[name] = independent  # parts share the task's form
            for k, name in enumerate(model.output_names):
                bound = self.error_bounds.get(name)
                if bound is not None:
                    for p, b in zip(chunk, bound.bounds(spread[:, k])):
                        p.prediction.error_bounds[name] = float(b)
                        p.prediction.error_bound_coverage[name] = bound.coverage

    def predict_one(self, item, source: str) -> CrystalPrediction:
        """Prediction of one item, or a CrystalPrediction carrying the one-line reason it failed."""
        return self.finish([self.prepare(item, source)])[0]

    def chunks(self, items, sources=None, workers: int = 0, chunk_size: int = 256, progress: bool = False):
        """Yield lists of CrystalPredictions, ``chunk_size`` items at a time and in order, holding
        only a few chunks in memory; ``workers`` DataLoader processes do ``prepare``, handing
        over one model batch (``batch_size`` crystals) at a time, so that the networks start on
        the first batch, not the first chunk."""
        items = list(items)
        sources = sources or [str(i) if isinstance(i, (str, Path)) and not is_structure_text(i) else f"structure {n}"
                              for n, i in enumerate(items)]
        loader = DataLoader(_PrepareDataset(self, items, sources), batch_size=min(chunk_size, self.batch_size),
                            shuffle=False, num_workers=workers, collate_fn=list, worker_init_fn=_single_thread_worker,
                            prefetch_factor=max(2, -(-chunk_size // self.batch_size)) if workers else None)
        with progress_bar(enabled=progress, total=len(items), desc="predict", unit="crystal") as bar, \
                threads_beside_workers(workers):
            batches = iter(loader)  # the workers start preparing ...
            if workers and items:
                self.models  # noqa: B018 - ... while the networks are built here
            results = []
            for prepared in batches:
                done = self.finish(prepared)
                bar.update(len(done))
                results += done
                if len(results) >= chunk_size:
                    yield results[:chunk_size]
                    results = results[chunk_size:]
            if results:
                yield results

    def stream(self, items, sources=None, workers: int = 0, chunk_size: int = 256, progress: bool = False):
        """Yield one CrystalPrediction per item, in order (see ``chunks``)."""
        for chunk in self.chunks(items, sources, workers, chunk_size, progress):
            yield from chunk

    def predict(self, items, sources=None, progress: bool = False, workers: int = 0) -> list[CrystalPrediction]:
        """One CrystalPrediction per item (paths, pymatgen Structures or ASE Atoms), errors included."""
        return list(self.stream(items, sources, workers=workers, progress=progress))


class _PrepareDataset:
    """Item i -> Predictor.prepare(items[i], sources[i]) (map-style dataset for a DataLoader)."""

    def __init__(self, predictor: Predictor, items: list, sources: list[str]):
        self.predictor, self.items, self.sources = predictor, items, sources

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.predictor.prepare(self.items[i], self.sources[i])


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux prctl PR_SET_PDEATHSIG),
    so that a DataLoader worker never outlives a killed ``gmtnet predict``; exit at once if the
    parent is already gone. Elsewhere a no-op (torch's workers then notice a dead parent later)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
        return
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os._exit(1)


#: Scheduling priority of prediction workers below the main process (``os.nice``): the main
#: process (building the networks, running them) is the critical path; the workers that read
#: and prepare structures take the CPU it leaves.
WORKER_NICENESS = 10


def _single_thread_worker(_worker_id: int) -> None:
    """DataLoader worker start: one torch thread, one BLAS thread, a lower priority than the main
    process, and death with the parent process."""
    _die_with_parent()
    torch.set_num_threads(1)
    threadpool_limits(1)
    if hasattr(os, "nice"):
        try:
            os.nice(WORKER_NICENESS)
        except OSError:  # pragma: no cover - not permitted here: the same priority then
            pass


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def threads_beside_workers(workers: int):
    """While ``workers`` single-threaded worker processes run: torch in this process uses the
    cores they leave (at least one) and BLAS one thread, so that no core runs two busy threads
    (OpenBLAS threads spin while they wait and would slow every process down). Restored on exit;
    nothing changes without workers. A different number of torch threads sums in a different
    order, so predictions with and without workers agree to float32 rounding, not bit for bit."""
    if workers <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, available_cores() - workers))
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)


def is_one_structure(obj) -> bool:
    """Whether ``obj`` is one structure (a Structure, ASE Atoms, pymatgen dict, path or text)
    rather than an iterable of them (a list, tuple, generator, numpy object array, ...)."""
    from ase import Atoms
    from pymatgen.core import Structure

    return isinstance(obj, (Structure, Atoms, dict, str, Path)) or not hasattr(obj, "__iter__")


def predict(structures, task: str = "all", as_pymatgen: bool = False, models: dict | None = None,
            symmetry_backend: str = PREDICTION_BACKEND, refine: bool = True, return_error_bound: bool = False):
    """Predict tensors for structures: one (a pymatgen Structure, ASE Atoms, file path, CIF or
    POSCAR text, pymatgen dict) or any iterable of them (list, generator, numpy array, ...).

    ``task``: "dielectric", "piezoelectric", "elastic", a part of one whose model predicts parts
    ("dielectric_electronic", "dielectric_ionic"), or "all" (every tensor of the three models,
    parts included). ``symmetry_backend``: "moyopy" (default) or "spglib"; ``refine``:
    symmetrize within symprec first (default) or use the structure as given; as for Predictor.

    Returns:
        task != "all": (N, 3, ..., 3) float64 array in each input's frame (or a list of pymatgen
            objects with ``as_pymatgen``). task == "all": {name: that array or list} for every
            tensor the models predict (``Predictor.output_names``).
        With ``return_error_bound``: (that, bounds), bounds being for each tensor an (N,) array
            of bounds on the Frobenius norm of each prediction's error in label units (NaN where
            the model carries no calibrated bound; see CrystalPrediction.error_bounds), a dict
            of them for task == "all".
        Structures that cannot be read or are invalid raise StructureError naming the problem
        (use Predictor.predict for per-item error records instead); a prediction with a warning
        (vacuum in the cell) issues a PredictionWarning.
    """
    items = [structures] if is_one_structure(structures) else list(structures)
    predictor = Predictor(task, models, symmetry_backend=symmetry_backend, refine=refine)
    if task == "all":
        names = predictor.output_names
    else:
        names = (get_tensor_type(task).name,)
        if names[0] not in predictor.output_names:
            raise GmtnetError(f"the {parent_type(task).name} model predicts {', '.join(predictor.output_names)}, "
                              f"not {names[0]}")
    results = predictor.predict(items)
    for r in results:
        if not r.ok:
            raise StructureError(f"{r.source}: {r.error}")
        for text in r.warnings:
            warnings.warn(f"{r.source}: {text}", PredictionWarning, stacklevel=2)
    out = {}
    for t in names:
        if as_pymatgen:
            out[t] = [r.pymatgen(t) for r in results]
        else:
            out[t] = np.stack([r.tensors[t] for r in results]) if results else np.zeros((0, *get_tensor_type(t).shape))
    bounds = {t: np.array([r.error_bounds.get(t, np.nan) for r in results], dtype=np.float64) for t in names}
    if task != "all":
        out, bounds = out[names[0]], bounds[names[0]]
    return (out, bounds) if return_error_bound else out
