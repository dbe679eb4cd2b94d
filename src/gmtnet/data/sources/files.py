"""A user's own tensor data set, as JSON or CSV.

JSON: a list of objects (or ``{"records": [...]}``); CSV: one row per record. Fields:

- ``id`` (or ``material_id``): the record's name (default: its position);
- ``structure``: CIF text, POSCAR text, a pymatgen Structure dict, or a path to a structure file
  (relative paths are taken from the data file's folder);
- ``tensor``: the label as a nested list (in CSV: JSON text), either full Cartesian (3,)*order or
  Voigt in pymatgen's order (dielectric (6,), piezoelectric (3, 6), elastic (6, 6));
- ``split`` (optional): train / val / test; without it the benchmark rule assigns 80/10/10.

Each record gets the same curation as the benchmark; problems are reported per record.
"""

from __future__ import annotations

import json
from pathlib import Path

from gmtnet.data.curation import CurationConfig, RawRecord, curate_all, tensor_from_array
from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import SPLITS, random_split
from gmtnet.data.structures import as_structure
from gmtnet.errors import DataNotFoundError, GmtnetError, TensorError
from gmtnet.tensors import get_tensor_type


def _read_rows(path: Path) -> list[dict]:
    if path.suffix.lower() == ".json":
        try:
            blob = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GmtnetError(f"{path}: not valid JSON ({exc})") from None
        rows = blob.get("records") if isinstance(blob, dict) else blob
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GmtnetError(f"{path}: expected a list of records (objects with structure and tensor)")
        return rows
    if path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            frame = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
        except Exception as exc:  # noqa: BLE001
            raise GmtnetError(f"{path}: unreadable CSV ({exc})") from None
        return frame.to_dict(orient="records")
    raise GmtnetError(f"{path}: unsupported data file type {path.suffix!r} (use .json or .csv)")


def _tensor_values(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise TensorError("tensor text is not a JSON nested list") from None
    return value


def load_file(path: str | Path, task: str, symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """Curated dataset from a user's JSON or CSV file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    ttype = get_tensor_type(task)
    rows = _read_rows(path)
    for n, row in enumerate(rows):
        missing = {"structure", "tensor"} - set(row)
        if missing:
            raise GmtnetError(f"{path}: record {n} lacks the field(s) {', '.join(sorted(missing))}")
    raws = []
    for n, row in enumerate(rows):
        rid = str(row.get("id") or row.get("material_id") or f"record-{n}")
        split = row.get("split") or None
        if split is not None and split not in SPLITS:
            raise GmtnetError(f"{path}: record {rid} has split {split!r}, expected one of {', '.join(SPLITS)}")
        raws.append(RawRecord(
            rid,
            lambda r=row: as_structure(r["structure"], base_dir=path.parent),
            lambda r=row: tensor_from_array(_tensor_values(r["tensor"]), ttype),
            split,
        ))
    split_of = random_split([r.record_id for r in raws]) if any(r.split is None for r in raws) else None
    return curate_all(raws, ttype, CurationConfig(symprec=symprec), "file", split_of=split_of, progress=progress)
