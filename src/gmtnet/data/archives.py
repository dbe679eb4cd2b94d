"""Numpy archives of crystals and tensors committed in the package (MP-2026, MP DFPT dielectric).

Every archive has one layout: ``ids`` (n,), ``n_atoms`` (n,), ``z`` (atomic numbers) and
``positions`` (Cartesian, Angstrom) of all atoms, crystal i owning rows ``offset[i]:offset[i+1]``
with ``offset = [0, cumsum(n_atoms)]``, ``cells`` (n, 3, 3) with the lattice vectors as rows, and
label arrays (n, k). An archive is read only after its sha256 matched the one the code expects,
and with ``allow_pickle=False``: nothing in it can run code.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gmtnet.errors import DataNotFoundError, GmtnetError

#: The arrays every archive holds besides its labels.
STRUCTURE_ARRAYS = ("ids", "n_atoms", "z", "positions", "cells")


@dataclass(frozen=True)
class Archive:
    """One committed archive: its file name and the sha256 it must have."""

    file: str
    sha256: str


def verified_bytes(folder: Path, archive: Archive, what: str) -> bytes:
    """The archive's bytes; DataNotFoundError when it cannot be read, GmtnetError when its sha256
    is not the expected one. ``what`` names the data set in messages (e.g. "MP-2026")."""
    path = Path(folder) / archive.file
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataNotFoundError(f"{what} archive {path} cannot be read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != archive.sha256:
        raise GmtnetError(f"{what} archive {path} has sha256 {digest}, expected {archive.sha256}: "
                          "the file was changed or damaged")
    return blob


def read_arrays(folder: Path, archive: Archive, labels: dict[str, int], what: str) -> dict[str, np.ndarray]:
    """The structure arrays and the label arrays ``labels`` ({name: entries per crystal}) of a
    verified archive; GmtnetError when an array is missing or the shapes do not fit together."""
    path = Path(folder) / archive.file
    blob = verified_bytes(folder, archive, what)
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in (*STRUCTURE_ARRAYS, *labels)}
    except (KeyError, ValueError, OSError) as exc:
        raise GmtnetError(f"{what} archive {path} is not in the expected layout ({exc})") from None
    n = len(arrays["ids"])
    if (arrays["n_atoms"].shape != (n,) or arrays["cells"].shape != (n, 3, 3)
            or any(arrays[name].shape != (n, size) for name, size in labels.items())
            or len(arrays["z"]) != int(arrays["n_atoms"].sum()) or arrays["positions"].shape != (len(arrays["z"]), 3)):
        raise GmtnetError(f"{what} archive {path} has inconsistent array shapes")
    return arrays


def offsets(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(n + 1,) first atom row of each crystal, and the total."""
    return np.concatenate([[0], np.cumsum(arrays["n_atoms"])]).astype(np.int64)


def structure_at(arrays: dict[str, np.ndarray], i: int, start: int, stop: int):
    """The pymatgen Structure of crystal i (atom rows ``start:stop``)."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(arrays["cells"][i]), arrays["z"][start:stop].tolist(), arrays["positions"][start:stop],
                     coords_are_cartesian=True)


__all__ = ["Archive", "STRUCTURE_ARRAYS", "offsets", "read_arrays", "structure_at", "verified_bytes"]
