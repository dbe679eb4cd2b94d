"""The MP-2026 tensor benchmark: 11,028 elastic and 3,245 piezoelectric DFT tensors.

Data: the Materials Project (CC-BY-4.0; de Jong et al., Sci. Data 2, 150009 and 150053, 2015), as
its API served them on 2026-07-04, in two numpy archives shipped with gmtnet
(``gmtnet/data/mp2026``, see the README there for provenance). Nothing is downloaded; each
archive's sha256 is checked before it is read, and it is read with ``allow_pickle=False``.

Archive layout: crystal i owns rows ``offset[i]:offset[i+1]`` of ``z`` (atomic numbers) and
``positions`` (Cartesian, Angstrom), ``offset = [0, cumsum(n_atoms)]``; ``cells[i]`` holds the
lattice vectors as rows; the label is MP's IEEE-frame tensor in pymatgen's Voigt order, flattened
row-major (elastic 6x6 GPa, rounded by MP to integers; piezoelectric 3x6 C/m^2).

Curation (the benchmark's definition), per record:

1. structure from the arrays (rules ``unreadable structure`` / ``invalid structure``);
2. elastic only, rule ``not positive definite`` (``curation.stiffness_rule``): the published
   6x6 label must be positive definite, decided exactly. Seven labels of the published split are
   singular (an eigenvalue exactly zero); the floating-point check that defined the split let them
   through by rounding. They are kept, because the split lists them, each with a warning in the
   report; the 28 other singular labels, which the split leaves out, are removed;
3. the label is rotated from the IEEE frame into the structure's frame: with R =
   ``Tensor.get_ieee_rotation(structure, refine_rotation=True)`` (pymatgen), R^T acts on every index;
4. the frame check and the symmetrized label of ``curation.curate_record`` (symprec 1e-3).

Splits: ``gmtnet/data/splits/mp2026_splits.json`` (rule in ``splits.mp2026_splits``). Curated
datasets are cached under ``$GMTNET_DATA/mp2026/processed``, keyed by the archive's sha256.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from gmtnet.data.archives import Archive, offsets, read_arrays, structure_at, verified_bytes
from gmtnet.data.curation import (NOT_POSITIVE_DEFINITE, CurationConfig, CurationError, RawRecord, curate_all,
                                  stiffness_rule, tensor_from_array)
from gmtnet.data.processed import read_processed, write_processed
from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import mp2026_splits, split_lookup
from gmtnet.errors import GmtnetError
from gmtnet.tensors import TensorType, get_tensor_type, rotate_tensor
from gmtnet.utils.io import data_dir

PROCESSED_VERSION = 1
ARCHIVES = {
    "elastic": Archive("mp_elastic_processed.npz", "f95e9231475a1ddd45e02826335b032e9a788f2783d8266a5606de6c8f19b00b"),
    "piezoelectric": Archive("mp_piezoelectric_processed.npz",
                             "92269792b8601886eb2e6501c5aa8acbc0246068fd1d7a36d1af604dd65eba38"),
}
#: Folder of the archives (tests point it at small fixture archives).
ARCHIVE_DIR: Path = Path(str(resources.files("gmtnet.data").joinpath("mp2026")))


def _check_task(task: str) -> TensorType:
    ttype = get_tensor_type(task)
    if ttype.name not in ARCHIVES:
        raise GmtnetError(f"the mp2026 source has {' and '.join(ARCHIVES)} tensors, not {ttype.name}: "
                          "use --source mp or mp-dfpt for dielectric tensors")
    return ttype


def read_archive(task: str) -> dict[str, np.ndarray]:
    """The arrays of a task's archive after its sha256 was checked; DataNotFoundError when the
    file is missing, GmtnetError when its hash or layout is not the expected one."""
    ttype = _check_task(task)
    return read_arrays(ARCHIVE_DIR, ARCHIVES[ttype.name], {ttype.name: int(np.prod(ttype.voigt_shape))}, "MP-2026")


def ieee_rotation(structure) -> np.ndarray:
    """pymatgen's rotation (3, 3) from the structure's Cartesian frame to its IEEE frame."""
    from pymatgen.core.tensors import Tensor

    return np.asarray(Tensor(np.eye(3)).get_ieee_rotation(structure, refine_rotation=True), dtype=np.float64)


class _Row:
    """Lazy parsing of one archive row; the label needs the structure (its IEEE rotation)."""

    def __init__(self, arrays: dict, i: int, start: int, stop: int, ttype: TensorType, singular_allowed: bool,
                 warnings: dict[str, str]):
        self.arrays, self.i, self.start, self.stop, self.ttype = arrays, i, start, stop, ttype
        self.record_id = str(arrays["ids"][i])
        self.singular_allowed, self.warnings = singular_allowed, warnings
        self._structure = None

    def structure(self):
        if self._structure is None:
            self._structure = structure_at(self.arrays, self.i, self.start, self.stop)
        return self._structure

    def tensor(self) -> np.ndarray:
        voigt = np.asarray(self.arrays[self.ttype.name][self.i], dtype=np.float64).reshape(self.ttype.voigt_shape)
        if not np.all(np.isfinite(voigt)):
            raise CurationError("invalid tensor", f"{self.ttype.name} label has NaN or infinite entries")
        if self.ttype.name == "elastic":
            warning = stiffness_rule(voigt, singular_allowed=self.singular_allowed)
            if warning is not None:
                self.warnings[self.record_id] = warning
        ieee = tensor_from_array(voigt, self.ttype)
        try:
            rotation = ieee_rotation(self.structure())
        except Exception as exc:  # noqa: BLE001 - pymatgen's symmetry analysis failing is this record's problem
            raise CurationError("frame", f"no IEEE rotation for this structure ({type(exc).__name__}: {exc})") from None
        return rotate_tensor(ieee, rotation.T, self.ttype)


def raw_records(task: str, arrays: dict | None = None, warnings: dict[str, str] | None = None) -> list[RawRecord]:
    """One lazily parsed RawRecord per archive row. Singular stiffnesses are allowed for the
    material ids of the published split; ``warnings`` collects {id: text} of those kept."""
    ttype = _check_task(task)
    arrays = read_archive(ttype.name) if arrays is None else arrays
    members = set(split_lookup(mp2026_splits()[ttype.name]))
    warnings = {} if warnings is None else warnings
    starts = offsets(arrays)
    rows = [_Row(arrays, i, int(starts[i]), int(starts[i + 1]), ttype, str(arrays["ids"][i]) in members, warnings)
            for i in range(len(arrays["ids"]))]
    return [RawRecord(row.record_id, row.structure, row.tensor) for row in rows]


def processed_path(task: str, symprec: float, root: Path | None = None) -> Path:
    digest = ARCHIVES[task].sha256[:12]
    return Path(root or data_dir()) / "mp2026" / "processed" / f"{task}-v{PROCESSED_VERSION}-symprec{symprec:g}-{digest}.json.gz"


def curate(task: str, root: Path | None = None, symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """Curate one task from its committed archive and cache the result (atomically)."""
    ttype = _check_task(task)
    warnings: dict[str, str] = {}
    records = raw_records(ttype.name, warnings=warnings)
    dataset = curate_all(records, ttype, CurationConfig(symprec=symprec), "mp2026",
                         split_of=split_lookup(mp2026_splits()[ttype.name]), progress=progress)
    kept = {r.material_id for r in dataset}
    for record_id, text in warnings.items():
        if record_id in kept:
            dataset.report.add_warning(record_id, NOT_POSITIVE_DEFINITE, f"{text}; kept: the benchmark's split lists it")
    write_processed(processed_path(ttype.name, symprec, root), dataset, PROCESSED_VERSION, symprec=symprec,
                    archive_sha256=ARCHIVES[ttype.name].sha256)
    return dataset


def load(task: str, root: Path | None = None, symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """The curated dataset, from the cache when present, else curated now from the archive. The
    archive's sha256 is checked either way."""
    ttype = _check_task(task)
    cached = read_processed(processed_path(ttype.name, symprec, root), PROCESSED_VERSION, "mp2026",
                            symprec=symprec, archive_sha256=ARCHIVES[ttype.name].sha256)
    if cached is None:
        return curate(ttype.name, root, symprec, progress)  # reads, so checks, the archive
    verified_bytes(ARCHIVE_DIR, ARCHIVES[ttype.name], "MP-2026")
    return cached


__all__ = ["ARCHIVES", "Archive", "curate", "load", "raw_records", "read_archive", "ieee_rotation"]
