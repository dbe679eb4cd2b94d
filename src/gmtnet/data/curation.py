"""Curation rules that turn a raw (structure, tensor) pair into a trusted label.

The rules (names used in reports), in the order they are applied:

0. ``duplicate id``          a record with the id of an earlier one (the first is curated, the
                             others removed: an id names one crystal in splits and reports);
1. ``unreadable structure``  the structure text/file cannot be parsed;
2. ``invalid structure``     disorder, partial occupancy, overlap, NaN, unknown element;
3. ``invalid tensor``        wrong shape or non-finite entries;
4. ``symmetry``              spglib fails, or its operations do not form a group;
5. ``frame``                 the label does not obey the structure's point group in the
                             structure's frame: max_R max|R.T - T| / max|T| >= frame_tol, with the
                             lattice-derived R = L W L^-1 (a zero tensor passes);
6. ``magnitude``             max|T| >= max_abs (the paper's screen; dielectric and JARVIS piezo);
7. parts (a record whose source gives the parts of a tensor that is a sum of parts,
   ``TensorType.parts``, e.g. the electronic and ionic dielectric tensors):
   ``frame`` for each part the source gives, then ``bound``: every eigenvalue of each part as an
   operator at least its type's lower bound minus ``PART_BOUND_TOL`` (electronic >= 1, ionic
   >= 0). A source that requires its parts (``CurationConfig.parts_required``) loses the record
   when a part breaks a rule; otherwise the record is kept without parts, with a warning.

A source may apply rules of its own while it loads a record (its loaders raise CurationError with
the rule's name), e.g. ``not positive definite`` for the elastic tensors of the MP-2026 set
(``stiffness_rule``). A source may also keep a record with a warning (``CurationReport.warnings``).

The label is then the Reynolds projection of T onto the point group (and the type's index
symmetry), snapped so that forced zeros are exactly 0.0 and forced equalities exact. It uses the
exactly orthogonal rotations of ``CrystalSymmetry.rotations``. Parts are projected the same way
and add up to the label: when the source gives every part, the label is the sum of the projected
parts (exactly); when it gives all but one, that one is the projected total minus the others (the
matminer set gives the total and the electronic tensor; ionic = total - electronic), and their
sum is the label to rounding. Each part keeps the label's forced zeros and equalities exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gmtnet.data.records import CurationReport, TensorDataset, TensorRecord
from gmtnet.data.structures import validate_structure
from gmtnet.errors import GmtnetError, StructureError, TensorError
from gmtnet.symmetry import CrystalSymmetry, SymmetryConstraints, SymmetryError, crystal_symmetry
from gmtnet.tensors import TensorType, from_voigt, get_tensor_type
from gmtnet.tensors.bounds import operator_eigenvalues
from gmtnet.tensors.definiteness import inertia
from gmtnet.tensors.transform import group_action_matrices
from gmtnet.tensors.voigt import PYMATGEN_VOIGT_ORDER
from gmtnet.utils.progress import progress_bar

NOT_POSITIVE_DEFINITE = "not positive definite"
#: Tolerance of the parts' bound rule on each eigenvalue (label units).
PART_BOUND_TOL = 1e-3


class CurationError(GmtnetError):
    """A record breaks a curation rule; ``rule`` names it."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class CurationConfig:
    """Tolerances of the curation (defaults: the shared MP benchmark's definition)."""

    symprec: float = 1e-3
    frame_tol: float = 1e-2
    max_abs: float | None = None
    parts_required: bool = False


def tensor_from_array(values, ttype: TensorType, voigt_order=PYMATGEN_VOIGT_ORDER) -> np.ndarray:
    """Full Cartesian float64 tensor from a Cartesian or Voigt array-like (shape decides)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TensorError(f"{ttype.name} label is not a numeric array") from None
    if array.shape == ttype.shape:
        full = array
    elif ttype.voigt_pairs is not None and array.shape == ttype.voigt_shape:
        full = from_voigt(array, ttype, voigt_order)
    else:
        allowed = f"{ttype.shape}" + (f" or Voigt {ttype.voigt_shape}" if ttype.voigt_pairs else "")
        raise TensorError(f"{ttype.name} label has shape {array.shape}, expected {allowed}")
    if not np.all(np.isfinite(full)):
        raise TensorError(f"{ttype.name} label has NaN or infinite entries")
    return full


def frame_error(tensor: np.ndarray, rotations: np.ndarray, ttype: TensorType) -> float:
    """max over R of max|R.T - T| / max|T|; 0 for an all-zero tensor. ``rotations`` (n, 3, 3)
    act on every index (times det R for an axial type), as ``rotate_tensor`` defines."""
    scale = np.abs(tensor).max()
    if scale == 0:
        return 0.0
    flat = np.asarray(tensor, dtype=np.float64).reshape(-1)
    rotated = group_action_matrices(rotations, ttype) @ flat  # (n, 3^order)
    return float(np.abs(rotated - flat).max()) / scale


def stiffness_rule(voigt: np.ndarray, singular_allowed: bool = False) -> str | None:
    """The ``not positive definite`` rule for a 6x6 Voigt stiffness (GPa, as published).

    The symmetric part's inertia is counted exactly (``tensors.definiteness``). A negative
    eigenvalue (mechanically unstable, or a failed calculation) raises CurationError. A zero
    eigenvalue with no negative one (singular, on the boundary of stability) raises too unless
    ``singular_allowed``; then the record is kept and the returned text says why it deserves a
    warning. Returns None for a positive-definite stiffness.
    """
    counts = inertia(voigt)
    if counts.negative:
        low = float(np.linalg.eigvalsh(0.5 * (voigt + voigt.T))[0])
        raise CurationError(NOT_POSITIVE_DEFINITE, f"stiffness has {counts.negative} negative eigenvalue(s) "
                                                   f"(lowest {low:.4g} GPa): unstable or a failed calculation")
    if counts.zero:
        text = f"stiffness is singular ({counts.zero} eigenvalue(s) exactly zero, none negative)"
        if not singular_allowed:
            raise CurationError(NOT_POSITIVE_DEFINITE, text)
        return text
    return None


def curate_record(structure, tensor: np.ndarray, ttype: TensorType,
                  config: CurationConfig = CurationConfig()) -> tuple[np.ndarray, CrystalSymmetry]:
    """Apply rules 2-6 to a parsed record; returns (symmetrized label, symmetry) or raises
    CurationError naming the rule."""
    try:
        validate_structure(structure)
    except StructureError as exc:
        raise CurationError("invalid structure", str(exc)) from None
    if tensor.shape != ttype.shape or not np.all(np.isfinite(tensor)):
        raise CurationError("invalid tensor", f"{ttype.name} label must be a finite array of shape {ttype.shape}")
    try:
        _, sym = crystal_symmetry(structure, config.symprec)
    except SymmetryError as exc:
        raise CurationError("symmetry", str(exc)) from None
    err = frame_error(tensor, sym.raw_rotations, ttype)
    if err >= config.frame_tol:
        raise CurationError(
            "frame",
            f"label breaks the point group {sym.point_group} in the structure's frame "
            f"(relative error {err:.3g} >= {config.frame_tol:g})",
        )
    if config.max_abs is not None and np.abs(tensor).max() >= config.max_abs:
        raise CurationError("magnitude", f"max |entry| {np.abs(tensor).max():.4g} >= {config.max_abs:g}")
    label = SymmetryConstraints.from_rotations(sym.rotations, ttype).project(tensor)
    return label, sym


def curate_parts(label: np.ndarray, given: dict[str, np.ndarray], sym: CrystalSymmetry, ttype: TensorType,
                 config: CurationConfig = CurationConfig()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rule 7 for the parts of a curated record: (label, {part name: label}) with the parts adding
    up to the label (see module), or CurationError naming the rule and the part.

    ``given``: {part name: full Cartesian tensor} of all of ``ttype.parts``, or of all but one."""
    missing = [name for name in ttype.parts if name not in given]
    if len(missing) > 1 or set(given) - set(ttype.parts):
        raise CurationError("invalid tensor", f"{ttype.name} parts must be {' and '.join(ttype.parts)} "
                                              f"(all, or all but one), got {', '.join(given) or 'none'}")
    constraints = SymmetryConstraints.from_rotations(sym.rotations, ttype)
    parts = {}
    for name, tensor in given.items():
        if tensor.shape != ttype.shape or not np.all(np.isfinite(tensor)):
            raise CurationError("invalid tensor", f"{name} label must be a finite array of shape {ttype.shape}")
        err = frame_error(tensor, sym.raw_rotations, ttype)
        if err >= config.frame_tol:
            raise CurationError("frame", f"{name} label breaks the point group {sym.point_group} in the structure's "
                                         f"frame (relative error {err:.3g} >= {config.frame_tol:g})")
        parts[name] = constraints.project(tensor)
    if missing:
        parts[missing[0]] = label - sum(parts.values())
    else:
        label = sum(parts[name] for name in ttype.parts)
    for name in ttype.parts:
        part_type = get_tensor_type(name)
        lowest = float(operator_eigenvalues(parts[name], part_type)[0])
        if lowest < part_type.lower_bound - PART_BOUND_TOL:
            raise CurationError("bound", f"{name} label has an eigenvalue {lowest:.4g} below "
                                         f"{part_type.lower_bound:g} (by more than {PART_BOUND_TOL:g})")
    return label, {name: parts[name] for name in ttype.parts}


@dataclass
class RawRecord:
    """An uncurated record: parsing happens lazily so that its failure is reported per record.

    ``load_structure`` returns a pymatgen Structure; ``load_tensor`` the full Cartesian array;
    ``load_parts`` (None for a source without parts) {part name: full Cartesian array} of all
    parts of the tensor, or all but one (rule 7). Any of them may raise StructureError /
    TensorError (or any exception, reported as unreadable), or CurationError to apply a rule of
    the source's own.
    """

    record_id: str
    load_structure: object
    load_tensor: object
    split: str | None = None
    load_parts: object = None


def _loaded_parts(raw: RawRecord) -> dict[str, np.ndarray]:
    """The parts a raw record gives; a failure to read them is the ``invalid tensor`` rule."""
    try:
        return raw.load_parts()
    except CurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is this record's problem
        raise CurationError("invalid tensor", f"parts: {type(exc).__name__}: {exc}") from None


def curate_all(raw_records, ttype: TensorType, config: CurationConfig, source: str,
               split_of: dict[str, str] | None = None, progress: bool = False):
    """Curate every raw record; returns a TensorDataset whose ``report`` says what was removed."""
    raw_records = list(raw_records)
    report = CurationReport(task=ttype.name, source=source, n_input=len(raw_records))
    kept, seen = [], {}
    for n, raw in enumerate(progress_bar(raw_records, enabled=progress, desc=f"curating {ttype.name}", unit="crystal")):
        if raw.record_id in seen:
            report.add_issue(raw.record_id, "duplicate id", f"record {n} has the id of record {seen[raw.record_id]}; "
                                                            "ids must be unique (the first is kept)")
            continue
        seen[raw.record_id] = n
        try:
            try:
                structure = raw.load_structure()
            except CurationError:
                raise
            except StructureError as exc:
                raise CurationError("unreadable structure", str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - any parser failure is this record's problem
                raise CurationError("unreadable structure", f"{type(exc).__name__}: {exc}") from None
            try:
                tensor = raw.load_tensor()
            except CurationError:
                raise
            except TensorError as exc:
                raise CurationError("invalid tensor", str(exc)) from None
            except Exception as exc:  # noqa: BLE001
                raise CurationError("invalid tensor", f"{type(exc).__name__}: {exc}") from None
            label, sym = curate_record(structure, tensor, ttype, config)
            parts = None
            if raw.load_parts is not None:
                try:
                    label, parts = curate_parts(label, _loaded_parts(raw), sym, ttype, config)
                except CurationError as exc:
                    if config.parts_required:
                        raise
                    report.add_warning(raw.record_id, exc.rule, f"{exc}; kept without its parts")
        except CurationError as exc:
            report.add_issue(raw.record_id, exc.rule, str(exc))
            continue
        split = raw.split if raw.split is not None else (split_of or {}).get(raw.record_id)
        kept.append(TensorRecord(raw.record_id, structure, label, split, ttype.name,
                                 sym.spacegroup_number, sym.crystal_system, parts))
    report.n_kept = len(kept)
    return TensorDataset(kept, task=ttype.name, source=source, report=report)
