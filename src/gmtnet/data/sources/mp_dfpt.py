"""MP-DFPT: 1,783 Materials Project dielectric tensors split into electronic and ionic parts.

Data: the Materials Project (CC-BY-4.0; Petousis et al., Sci. Data 4, 160134, 2017), as exported
for the MACE-Field work (see ``gmtnet/data/mp_dfpt/README.md`` for provenance), in numpy
archives shipped with gmtnet. Nothing is downloaded; each archive's sha256 is checked before it
is read (``gmtnet.data.archives``).

Each record's ``parts`` hold the electronic (eps_inf) and ionic tensors, ``tensor`` their sum
(the static permittivity, as in the matminer benchmark). Curation (the benchmark's definition),
per record: structure from the arrays; the frame check of the total and the magnitude screen
max|eps_total| >= 100 (``curation.curate_record``); the frame check of each part and the parts'
bounds (electronic eigenvalues >= 1, ionic >= 0, to 1e-3; ``curation.curate_parts``). A record
whose part breaks a rule is removed (``parts_required``).

Splits: ``gmtnet/data/splits/mp_dielectric_dfpt_splits.json`` (sorted ids, permuted by
``numpy.random.default_rng(42)``, 80 / 10 / 10). The 35 crystals the magnitude screen keeps out
of the benchmark (high-k materials, labels up to 300) are a separate archive, loaded as the
split "screened" (``load(..., screened=True)``): curated by the same rules without the screen,
never part of train, val or test.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from gmtnet.data.archives import Archive, offsets, read_arrays, structure_at, verified_bytes
from gmtnet.data.curation import CurationConfig, RawRecord, curate_all
from gmtnet.data.processed import read_processed, write_processed
from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import mp_dfpt_splits, split_lookup
from gmtnet.errors import GmtnetError
from gmtnet.tensors import DIELECTRIC, get_tensor_type
from gmtnet.utils.io import data_dir

PROCESSED_VERSION = 1
NAME = "MP-DFPT"
ARCHIVES = {
    "benchmark": Archive("mp_dielectric_dfpt.npz", "cbaa12590960c07582e8be40619a82f07b7d477173d1f4aca6364e71e7a3f387"),
    "screened": Archive("mp_dielectric_dfpt_screened.npz",
                        "68706672a02aa2c3cc6b64b68621b17f4c0530064f7799eebcaf5b8651772a96"),
}
#: Folder of the archives (tests point it at small fixture archives).
ARCHIVE_DIR: Path = Path(str(resources.files("gmtnet.data").joinpath("mp_dfpt")))
#: The archives' label arrays, in the order of ``DIELECTRIC.parts``.
PART_ARRAYS = {"dielectric_electronic": "eps_electronic", "dielectric_ionic": "eps_ionic"}
#: The benchmark's magnitude screen on the total tensor (the matminer benchmark's).
MAX_ABS = 100.0
SCREENED = "screened"


def _check_task(task: str) -> None:
    if get_tensor_type(task) is not DIELECTRIC:
        raise GmtnetError(f"the mp-dfpt source has dielectric tensors, not {get_tensor_type(task).name}")


def read_archive(screened: bool = False) -> dict[str, np.ndarray]:
    """The arrays of the benchmark archive (or the screened one) after its sha256 was checked."""
    archive = ARCHIVES[SCREENED if screened else "benchmark"]
    return read_arrays(ARCHIVE_DIR, archive, dict.fromkeys(PART_ARRAYS.values(), 9), NAME)


def raw_records(arrays: dict[str, np.ndarray]) -> list[RawRecord]:
    """One lazily parsed RawRecord per archive row: the total tensor and both parts."""
    starts = offsets(arrays)

    def parts_of(i: int):
        return lambda: {name: np.asarray(arrays[key][i], dtype=np.float64).reshape(3, 3)
                        for name, key in PART_ARRAYS.items()}

    def structure_of(i: int):
        return lambda: structure_at(arrays, i, int(starts[i]), int(starts[i + 1]))

    def total_of(i: int):
        return lambda: sum(parts_of(i)().values())

    return [RawRecord(str(arrays["ids"][i]), structure_of(i), total_of(i), load_parts=parts_of(i))
            for i in range(len(arrays["ids"]))]


def processed_path(symprec: float, root: Path | None = None, screened: bool = False) -> Path:
    archive = ARCHIVES[SCREENED if screened else "benchmark"]
    name = f"dielectric{'-screened' if screened else ''}-v{PROCESSED_VERSION}-symprec{symprec:g}-{archive.sha256[:12]}"
    return Path(root or data_dir()) / "mp-dfpt" / "processed" / f"{name}.json.gz"


def curate(root: Path | None = None, symprec: float = 1e-3, progress: bool = False,
           screened: bool = False) -> TensorDataset:
    """Curate the benchmark archive (or the screened one) and cache the result (atomically)."""
    config = CurationConfig(symprec=symprec, max_abs=None if screened else MAX_ABS, parts_required=True)
    split_of = ({i: SCREENED for i in read_archive(True)["ids"].tolist()} if screened
                else split_lookup(mp_dfpt_splits()))
    dataset = curate_all(raw_records(read_archive(screened)), DIELECTRIC, config, "mp-dfpt", split_of=split_of,
                         progress=progress)
    archive = ARCHIVES[SCREENED if screened else "benchmark"]
    write_processed(processed_path(symprec, root, screened), dataset, PROCESSED_VERSION, symprec=symprec,
                    archive_sha256=archive.sha256)
    return dataset


def load(task: str = "dielectric", root: Path | None = None, symprec: float = 1e-3, progress: bool = False,
         screened: bool = False) -> TensorDataset:
    """The curated benchmark (or with ``screened`` the 35 high-k crystals it screens out, split
    "screened"), from the cache when present, else curated now. The archive's sha256 is checked
    either way."""
    _check_task(task)
    archive = ARCHIVES[SCREENED if screened else "benchmark"]
    cached = read_processed(processed_path(symprec, root, screened), PROCESSED_VERSION, "mp-dfpt",
                            symprec=symprec, archive_sha256=archive.sha256)
    if cached is None:
        return curate(root, symprec, progress, screened)  # reads, so checks, the archive
    verified_bytes(ARCHIVE_DIR, archive, NAME)
    return cached


__all__ = ["ARCHIVES", "MAX_ABS", "PART_ARRAYS", "SCREENED", "curate", "load", "raw_records", "read_archive"]
