"""Shared ingredients of gmtnet's tests and benchmarks: ideal crystals of all seven crystal systems.

``ideal_crystals()`` gives hand-built structures whose symmetry is exact (built from their space
groups), one or two per crystal system, with the point groups that make every kind of forced
tensor pattern appear (opposite-sign equalities in quartz, a piezoelectric zincblende, a
centrosymmetric rock salt, both monoclinic kinds, triclinic 1 and -1).
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Lattice, Structure


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


def pinned_crystals(examples: str | Path) -> dict:
    """{name: structure or file path}: the CIF files in the folder ``examples`` and the ideal
    crystals, whose shipped-model predictions tests/fixtures/shipped_predictions.json pins."""
    inputs = {f.name: str(f) for f in sorted(Path(examples).glob("*.cif"))}
    inputs.update(ideal_crystals())
    return inputs


__all__ = ["ideal_crystals", "pinned_crystals"]
