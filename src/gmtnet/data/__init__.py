"""Tensor datasets: structures, curation, sources and splits.

Main entry point: ``load_dataset(task, source="mp", split=None)``.
"""

from __future__ import annotations

from pathlib import Path

from gmtnet.data.records import CurationReport, TensorDataset, TensorRecord
from gmtnet.data.structures import as_structure, read_structure, validate_structure
from gmtnet.errors import GmtnetError

SOURCES = ("mp", "mp2026", "mp-dfpt", "jarvis", "file")
#: Joins sources into one dataset, e.g. "mp+mp-dfpt": both benchmarks' records, each keeping its split.
UNION = "+"


def load_dataset(task: str, source: str = "mp", split: str | None = None, path: str | Path | None = None,
                 symprec: float = 1e-3, root: str | Path | None = None, progress: bool = False,
                 trust_pickle: bool = False) -> TensorDataset:
    """Curated tensor records of one task.

    Args:
        task: "dielectric", "piezoelectric" or "elastic".
        source: "mp" (Materials Project benchmark; run ``gmtnet data fetch`` once), "mp2026" (the
            MP-2026 elastic and piezoelectric benchmark, shipped with gmtnet), "mp-dfpt" (1,783 MP
            dielectric tensors with their electronic and ionic parts, shipped with gmtnet; its
            split "screened" holds the 35 high-k crystals the benchmark screens out), "jarvis"
            (a GMTNet-format pickle given by ``path``; without ``path``, jarvis-tools' dft_3d
            elastic set, which needs network access), or "file" (a user's JSON/CSV at ``path``).
            Sources joined by "+" (e.g. "mp+mp-dfpt") give the records of each, in order, each
            keeping its split.
        split: "train", "val", "test", or None for all records ("screened" for "mp-dfpt").
        symprec: spglib tolerance (Angstrom) of the curation.
        root: data directory (default ``$GMTNET_DATA`` or ``~/.cache/gmtnet``), for "mp" and
            "mp2026" (where the curated records are cached).
        trust_pickle: open a "jarvis" pickle at ``path`` (a pickle can run code when read; refused
            unless True).

    Returns:
        A TensorDataset (a list of TensorRecord) whose ``report`` tells what curation removed.
    """
    from gmtnet.data.sources import files, jarvis, mp, mp2026, mp_dfpt
    from gmtnet.symmetry import check_tolerance

    check_tolerance(symprec)
    root = Path(root) if root is not None else None
    if UNION in source:
        names = source.split(UNION)
        if len(set(names)) != len(names):
            raise GmtnetError(f"data source {source!r} names a source twice")
        parts = [load_dataset(task, name, split, path, symprec, root, progress, trust_pickle) for name in names]
        return TensorDataset.concatenate(parts, source)
    if split == mp_dfpt.SCREENED:
        if source != "mp-dfpt":
            raise GmtnetError(f"the split {split!r} is the mp-dfpt source's (its high-k crystals), not {source}'s")
        return mp_dfpt.load(task, root=root, symprec=symprec, progress=progress, screened=True)
    if source == "mp":
        dataset = mp.load(task, root=root, symprec=symprec, progress=progress)
    elif source == "mp2026":
        dataset = mp2026.load(task, root=root, symprec=symprec, progress=progress)
    elif source == "mp-dfpt":
        dataset = mp_dfpt.load(task, root=root, symprec=symprec, progress=progress)
    elif source == "jarvis":
        dataset = (jarvis.load_pickle(path, task, symprec, progress, trust_pickle) if path is not None
                   else jarvis.load_dft3d(task, symprec, progress))
    elif source == "file":
        if path is None:
            raise GmtnetError("source 'file' needs the path of a JSON or CSV data file")
        dataset = files.load_file(path, task, symprec, progress)
    else:
        raise GmtnetError(f"unknown data source {source!r}: expected one of {', '.join(SOURCES)}, or several joined by +")
    if split is not None:
        if split not in ("train", "val", "test"):
            raise GmtnetError(f"unknown split {split!r}: expected train, val or test")
        dataset = dataset.split(split)
    return dataset


__all__ = [
    "SOURCES",
    "load_dataset",
    "TensorRecord",
    "TensorDataset",
    "CurationReport",
    "as_structure",
    "read_structure",
    "validate_structure",
]
