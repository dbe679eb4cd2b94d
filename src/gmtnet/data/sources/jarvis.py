"""JARVIS-DFT tensors: the GMTNet-format pickles a user points at, and jarvis-tools' dft_3d.

GMTNet-format pickles are lists of dicts with ``JARVIS_ID`` and ``atoms`` (a jarvis-tools Atoms
dict) and, per file:

- ``jarvis_diele_piezo.pkl``: ``dielectric`` and ``dielectric_ionic`` (3x3; the label is their
  sum, electronic + ionic, like the MP benchmark's e_total) and ``piezoelectric_C_m2`` (3x6);
- ``jarvis_elastic.pkl``: ``elastic_total_kbar`` (6x6, kbar; converted to GPa).

Voigt matrices in JARVIS follow VASP's order xx, yy, zz, xy, yz, zx; they are converted to full
Cartesian tensors with that order. Splits: the benchmark rule (sorted ids, default_rng(42),
80/10/10). Pickles can run code when loaded: they are opened only on request (``trust_pickle``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from gmtnet.data.curation import CurationConfig, RawRecord, curate_all, tensor_from_array
from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import random_split
from gmtnet.errors import DataNotFoundError, GmtnetError, TensorError
from gmtnet.tensors import VASP_VOIGT_ORDER, get_tensor_type

KBAR_TO_GPA = 0.1
#: The paper's screen: entries of 100 or more (in label units) are dropped.
MAX_ABS = {"dielectric": 100.0, "piezoelectric": 100.0, "elastic": None}


def _jarvis_structure(atoms_dict: dict):
    from jarvis.core.atoms import Atoms

    return Atoms.from_dict(atoms_dict).pymatgen_converter()


def _label(entry: dict, task: str) -> np.ndarray:
    ttype = get_tensor_type(task)
    if task == "dielectric":
        if entry.get("dielectric") is None:
            raise TensorError("record has no 'dielectric' field")
        total = np.asarray(entry["dielectric"], dtype=float)
        if entry.get("dielectric_ionic") is not None:
            total = total + np.asarray(entry["dielectric_ionic"], dtype=float)
        return tensor_from_array(total, ttype)
    if task == "piezoelectric":
        if entry.get("piezoelectric_C_m2") is None:
            raise TensorError("record has no 'piezoelectric_C_m2' field")
        return tensor_from_array(entry["piezoelectric_C_m2"], ttype, VASP_VOIGT_ORDER)
    if entry.get("elastic_total_kbar") is None:
        raise TensorError("record has no 'elastic_total_kbar' field")
    return tensor_from_array(np.asarray(entry["elastic_total_kbar"], dtype=float) * KBAR_TO_GPA, ttype,
                             VASP_VOIGT_ORDER)


def raw_records_from_entries(entries: list[dict], task: str) -> list[RawRecord]:
    """Lazily parsed records of GMTNet/JARVIS-format dicts."""
    records = []
    for n, entry in enumerate(entries):
        rid = str(entry.get("JARVIS_ID", entry.get("jid", f"record-{n}")))
        records.append(RawRecord(rid, lambda e=entry: _jarvis_structure(e["atoms"]), lambda e=entry: _label(e, task)))
    return records


def _curate(entries: list[dict], task: str, symprec: float, progress: bool, source: str) -> TensorDataset:
    ttype = get_tensor_type(task)
    raws = raw_records_from_entries(entries, ttype.name)
    split_of = random_split([r.record_id for r in raws])
    config = CurationConfig(symprec=symprec, max_abs=MAX_ABS[ttype.name])
    return curate_all(raws, ttype, config, source, split_of=split_of, progress=progress)


def load_pickle(path: str | Path, task: str, symprec: float = 1e-3, progress: bool = False,
                trust_pickle: bool = False) -> TensorDataset:
    """Curated dataset from a GMTNet-format pickle (jarvis_diele_piezo.pkl or jarvis_elastic.pkl).

    A pickle can run any code while it is read, so it is opened only with ``trust_pickle=True``
    (``--trust-pickle``): say so only for a file from a source you trust."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file (give the path of the GMTNet JARVIS pickle)")
    if not trust_pickle:
        raise GmtnetError(f"{path} is a Python pickle, which can run code when it is read: pass --trust-pickle "
                          "(trust_pickle=True) only for a file from a source you trust")
    try:
        with path.open("rb") as handle:
            entries = pickle.load(handle)
    except Exception as exc:  # noqa: BLE001
        raise GmtnetError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise GmtnetError(f"{path}: expected a list of dicts (GMTNet JARVIS format)")
    return _curate(entries, task, symprec, progress, "jarvis")


def load_dft3d(task: str = "elastic", symprec: float = 1e-3, progress: bool = False) -> TensorDataset:
    """Elastic tensors of jarvis-tools' ``dft_3d`` (needs network access to its figshare file)."""
    if get_tensor_type(task).name != "elastic":
        raise GmtnetError("jarvis dft_3d provides elastic tensors only; use a GMTNet pickle for other tasks")
    try:
        from jarvis.db.figshare import data

        rows = data("dft_3d")
    except Exception as exc:  # noqa: BLE001
        raise GmtnetError(f"could not download jarvis dft_3d ({type(exc).__name__}: {exc}); "
                          "pass the GMTNet pickle with --path instead") from None
    entries = [
        {"JARVIS_ID": r["jid"], "atoms": r["atoms"], "elastic_total_kbar": np.asarray(r["elastic_tensor"]) / KBAR_TO_GPA}
        for r in rows
        if isinstance(r.get("elastic_tensor"), list) and len(r["elastic_tensor"]) == 6
    ]
    return _curate(entries, "elastic", symprec, progress, "jarvis")
