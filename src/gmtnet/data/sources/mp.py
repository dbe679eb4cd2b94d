"""The Materials Project tensor benchmark, from the matminer 0.3.9 source distribution on PyPI.

``fetch`` runs ``pip download matminer==0.3.9 --no-deps --no-binary :all:`` once and keeps the
three CSVs under ``<data_dir>/mp/raw``; curation results are cached under ``<data_dir>/mp/processed``.

Dielectric records also carry the electronic (e_electronic) and ionic (e_total - e_electronic)
parts (``TensorRecord.parts``), curated by rule 7 of ``gmtnet.data.curation``; a record whose
electronic tensor fails it keeps its total label (the benchmark is unchanged) without parts, with
a warning in the report.

| task          | CSV                      | label column              | structure                     |
|---------------|--------------------------|---------------------------|-------------------------------|
| dielectric    | dielectric_constant.csv  | e_total (3x3); part: e_electronic | POSCAR                |
| piezoelectric | piezoelectric_tensor.csv | piezoelectric_tensor (3x6)| conventional standard of POSCAR (IEEE frame) |
| elastic       | elastic_tensor.csv       | elastic_tensor_original (6x6) | POSCAR                    |
"""

from __future__ import annotations

import ast

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from gmtnet.data.curation import CurationConfig, RawRecord, curate_all, tensor_from_array
from gmtnet.data.processed import read_processed, write_processed
from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import mp_splits, split_lookup
from gmtnet.errors import DataNotFoundError, GmtnetError
from gmtnet.tensors import get_tensor_type
from gmtnet.utils.io import atomic_write_bytes, data_dir

MATMINER_SPEC = "matminer==0.3.9"
PROCESSED_VERSION = 2  # 2: dielectric parts

CSV_FILES = {
    "dielectric": ("dielectric_constant.csv", "e_total"),
    "piezoelectric": ("piezoelectric_tensor.csv", "piezoelectric_tensor"),
    "elastic": ("elastic_tensor.csv", "elastic_tensor_original"),
}
#: Columns of the parts a CSV gives ({part type name: column}); the rest of the total is the last part.
PART_COLUMNS = {"dielectric": {"dielectric_electronic": "e_electronic"}}
#: The paper's screen, kept by the benchmark for dielectric only.
MAX_ABS = {"dielectric": 100.0, "piezoelectric": None, "elastic": None}


def raw_dir(root: Path | None = None) -> Path:
    return Path(root or data_dir()) / "mp" / "raw"


def processed_path(task: str, symprec: float, root: Path | None = None) -> Path:
    return Path(root or data_dir()) / "mp" / "processed" / f"{task}-v{PROCESSED_VERSION}-symprec{symprec:g}.json.gz"


def fetch(root: Path | None = None, force: bool = False) -> Path:
    """Download the matminer 0.3.9 sdist through pip (once) and extract the three CSVs."""
    target = raw_dir(root)
    wanted = [name for name, _ in CSV_FILES.values()]
    if not force and all((target / name).is_file() for name in wanted):
        return target
    with tempfile.TemporaryDirectory(prefix="gmtnet-fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", MATMINER_SPEC, "--no-deps",
               "--no-binary", ":all:", "--disable-pip-version-check", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise GmtnetError(f"pip could not download {MATMINER_SPEC}: {last}")
        archives = list(Path(tmp).glob("matminer-0.3.9*.tar.gz"))
        if not archives:
            raise GmtnetError(f"pip download of {MATMINER_SPEC} produced no source archive")
        with tarfile.open(archives[0], "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.name.endswith(".csv")
                       and "/matminer/datasets/" in m.name}
            for name in wanted:
                if name not in members:
                    raise GmtnetError(f"{archives[0].name} has no matminer/datasets/{name}")
                atomic_write_bytes(target / name, tar.extractfile(members[name]).read())
    return target


def raw_records(task: str, csv_path: Path) -> list[RawRecord]:
    """Lazily parsed records of one matminer CSV (one per row)."""
    import pandas as pd

    ttype = get_tensor_type(task)
    _, column = CSV_FILES[task]
    part_columns = PART_COLUMNS.get(task, {})
    frame = pd.read_csv(csv_path, comment="#", usecols=["material_id", "poscar", column, *part_columns.values()])

    def structure_loader(poscar: str):
        def load():
            from pymatgen.io.vasp import Poscar

            structure = Poscar.from_str(poscar).structure
            if task == "piezoelectric":  # labels are in the IEEE frame of the conventional cell
                from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

                structure = SpacegroupAnalyzer(structure).get_conventional_standard_structure()
            return structure

        return load

    def tensor_loader(text: str):
        return lambda: tensor_from_array(ast.literal_eval(text), ttype)

    def parts_loader(row):
        if not part_columns:
            return None
        texts = {name: str(getattr(row, col)) for name, col in part_columns.items()}
        return lambda: {name: tensor_from_array(ast.literal_eval(text), ttype) for name, text in texts.items()}

    return [
        RawRecord(str(row.material_id), structure_loader(str(row.poscar)), tensor_loader(str(getattr(row, column))),
                  load_parts=parts_loader(row))
        for row in frame.itertuples(index=False)
    ]


def curate(task: str, root: Path | None = None, symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """Curate one task from the raw CSVs and cache the result (atomically)."""
    ttype = get_tensor_type(task)
    csv_name, _ = CSV_FILES[ttype.name]
    csv_path = raw_dir(root) / csv_name
    if not csv_path.is_file():
        raise DataNotFoundError(
            f"Materials Project data not found in {raw_dir(root)}: run `gmtnet data fetch` first"
        )
    config = CurationConfig(symprec=symprec, max_abs=MAX_ABS[ttype.name])
    dataset = curate_all(raw_records(ttype.name, csv_path), ttype, config, "mp",
                         split_of=split_lookup(mp_splits()[ttype.name]), progress=progress)
    write_processed(processed_path(ttype.name, symprec, root), dataset, PROCESSED_VERSION, symprec=symprec)
    return dataset


def load(task: str, root: Path | None = None, symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """The curated dataset, from the cache when present, else curated now from the raw CSVs."""
    ttype = get_tensor_type(task)
    cached = read_processed(processed_path(ttype.name, symprec, root), PROCESSED_VERSION, "mp")
    return cached if cached is not None else curate(ttype.name, root, symprec, progress)


__all__ = ["fetch", "curate", "load", "raw_records"]
