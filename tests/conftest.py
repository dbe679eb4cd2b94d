"""Shared fixtures: ideal crystals of all seven crystal systems and the offline MP fixture data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

FIXTURES = Path(__file__).parent / "fixtures"


def _sg(symbol, lattice, species, coords):
    return Structure.from_spacegroup(symbol, lattice, species, coords)


def ideal_crystals() -> dict[str, Structure]:
    """Hand-built ideal crystals; keys name the crystal, values are exact-symmetry structures."""
    return {
        # cubic
        "rocksalt_NaCl": _sg("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "zincblende_GaAs": _sg("F-43m", Lattice.cubic(5.65), ["Ga", "As"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        # hexagonal
        "wurtzite_ZnO": _sg("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
        # tetragonal
        "rutile_TiO2": _sg("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                           [[0, 0, 0], [0.305, 0.305, 0]]),
        # trigonal
        "alpha_quartz": _sg("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                            [[0.4697, 0, 2 / 3], [0.4135, 0.2669, 0.1191 + 2 / 3]]),
        # orthorhombic
        "orthorhombic_mm2": Structure(Lattice.orthorhombic(3.1, 4.2, 5.3), ["Ga", "N"], [[0, 0, 0], [0, 0, 0.37]]),
        "orthorhombic_mmm": Structure(Lattice.orthorhombic(3.1, 4.2, 5.3), ["Na", "Cl"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5]]),
        # monoclinic (unique axis b, along y in pymatgen's lattice orientation)
        "monoclinic_2m": _sg("P2_1/c", Lattice.monoclinic(5.1, 6.2, 7.3, 101.0), ["Na", "Cl"],
                             [[0.11, 0.23, 0.31], [0.37, 0.13, 0.27]]),
        "monoclinic_2": _sg("P2_1", Lattice.monoclinic(5.1, 6.2, 7.3, 101.0), ["Na", "Cl"],
                            [[0.11, 0.23, 0.31], [0.37, 0.13, 0.27]]),
        # triclinic
        "triclinic_1": Structure(Lattice.from_parameters(4.1, 5.2, 6.3, 81, 97, 103), ["Si", "O", "O"],
                                 [[0.0, 0.0, 0.0], [0.21, 0.33, 0.12], [0.61, 0.72, 0.45]]),
        "triclinic_-1": _sg("P-1", Lattice.from_parameters(4.1, 5.2, 6.3, 81, 97, 103), ["Si", "O"],
                            [[0.1, 0.2, 0.3], [0.31, 0.43, 0.22]]),
    }


@pytest.fixture(scope="session")
def crystals() -> dict[str, Structure]:
    return ideal_crystals()


@pytest.fixture
def mp_root(tmp_path) -> Path:
    """A data directory holding the committed MP fixture CSVs as if fetched."""
    shutil.copytree(FIXTURES / "mp" / "raw", tmp_path / "mp" / "raw")
    return tmp_path


@pytest.fixture
def mp2026_fixtures(monkeypatch) -> dict:
    """Points the mp2026 source at the committed fixture archives (real rows cut from the full
    ones, with their own checksums); returns expected.json: {task: {id: split or "removed: rule"}}."""
    from gmtnet.data.sources import mp2026

    folder = FIXTURES / "mp2026"
    sums = {name: digest for digest, name in (line.split() for line in (folder / "SHA256SUMS").read_text().splitlines())}
    monkeypatch.setattr(mp2026, "ARCHIVE_DIR", folder)
    monkeypatch.setattr(mp2026, "ARCHIVES", {task: mp2026.Archive(a.file, sums[a.file]) for task, a in mp2026.ARCHIVES.items()})
    return json.loads((folder / "expected.json").read_text())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
