"""Reading structures from files, text, dicts and ASE Atoms, and checking they are usable.

Every failure raises ``StructureError`` with one line that names the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gmtnet.errors import StructureError

#: Closest allowed distance between two atoms (Angstrom). Real bonds are >= 0.7 A (H-H 0.74).
MIN_INTERATOMIC_DISTANCE = 0.5
#: Elements with CGCNN atom features (jarvis-tools ships Z = 1..100).
MAX_ATOMIC_NUMBER = 100


def read_structure(path: str | Path):
    """A pymatgen Structure from any file pymatgen or ASE can read (CIF, POSCAR, extxyz, ...)."""
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such file")
    errors = []
    try:
        return Structure.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - fall back to ASE's readers
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        import ase.io

        return from_ase(ase.io.read(str(path)))
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    raise StructureError(f"{path}: unreadable structure file ({errors[-1]})")


def from_ase(atoms):
    """A pymatgen Structure from ASE Atoms; rejects cells that are not periodic in 3D."""
    from pymatgen.io.ase import AseAtomsAdaptor

    if not all(atoms.pbc):
        raise StructureError(
            f"not a 3D-periodic crystal (pbc={list(map(bool, atoms.pbc))}); a molecule or slab has no bulk tensor"
        )
    return AseAtomsAdaptor.get_structure(atoms)


def structure_from_text(text: str):
    """A Structure from CIF or POSCAR text."""
    from pymatgen.core import Structure

    fmt = "cif" if ("_cell_length_a" in text or text.lstrip().startswith("data_")) else "poscar"
    try:
        return Structure.from_str(text, fmt=fmt)
    except Exception as exc:  # noqa: BLE001
        raise StructureError(f"unreadable {fmt.upper()} text ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def as_structure(obj, base_dir: str | Path | None = None):
    """Coerce a Structure, ASE Atoms, pymatgen dict, CIF/POSCAR text or file path to a Structure."""
    from pymatgen.core import Structure

    from ase import Atoms

    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, Atoms):
        return from_ase(obj)
    if isinstance(obj, dict):
        try:
            return Structure.from_dict(obj)
        except Exception as exc:  # noqa: BLE001
            raise StructureError(f"invalid pymatgen structure dict ({exc})") from None
    if isinstance(obj, Path) or (isinstance(obj, str) and "\n" not in obj.strip()):
        path = Path(obj)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        return read_structure(path)
    if isinstance(obj, str):
        return structure_from_text(obj)
    raise StructureError(f"cannot make a structure from a {type(obj).__name__}")


def validate_structure(structure, min_distance: float = MIN_INTERATOMIC_DISTANCE) -> None:
    """Raise StructureError unless ``structure`` is an ordered, finite, 3D-periodic crystal of
    known elements with no two atoms closer than ``min_distance`` Angstrom."""
    if len(structure) == 0:
        raise StructureError("structure has no atoms")
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(lattice)) or not np.all(np.isfinite(structure.frac_coords)):
        raise StructureError("structure has NaN or infinite lattice or coordinates")
    pbc = getattr(structure.lattice, "pbc", (True, True, True))
    if not all(pbc):
        raise StructureError(f"not a 3D-periodic crystal (pbc={list(map(bool, pbc))})")
    if abs(np.linalg.det(lattice)) < 1e-6 * max(1.0, np.abs(lattice).max() ** 3):
        raise StructureError("lattice vectors are linearly dependent (zero cell volume)")
    for i, site in enumerate(structure):
        species = site.species
        if len(species) > 1:
            raise StructureError(f"disordered site {i} ({species.formula}): only ordered crystals are supported")
        occupancy = sum(species.values())
        if abs(occupancy - 1.0) > 1e-6:
            raise StructureError(f"partial occupancy {occupancy:g} on site {i} ({species.formula})")
        z = getattr(site.specie, "Z", 0)
        if not 1 <= z <= MAX_ATOMIC_NUMBER:
            raise StructureError(f"unknown element {site.specie} on site {i}: atom features exist for Z = 1..{MAX_ATOMIC_NUMBER}")
    centers, points, _, distances = structure.get_neighbor_list(r=min_distance)
    if len(distances):
        k = int(np.argmin(distances))
        raise StructureError(
            f"overlapping atoms: sites {int(centers[k])} and {int(points[k])} are {distances[k]:.3f} A apart "
            f"(minimum {min_distance} A)"
        )
