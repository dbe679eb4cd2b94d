"""Reading structures from every supported input and rejecting unusable ones with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Structure

from gmtnet.data.structures import as_structure, read_structure, validate_structure
from gmtnet.errors import StructureError


@pytest.fixture
def nacl(crystals) -> Structure:
    return crystals["rocksalt_NaCl"]


def test_reads_cif_poscar_and_ase_formats(tmp_path, nacl):
    import ase.io
    from pymatgen.io.ase import AseAtomsAdaptor

    nacl.to(filename=str(tmp_path / "nacl.cif"))
    nacl.to(filename=str(tmp_path / "POSCAR"), fmt="poscar")
    ase.io.write(tmp_path / "nacl.extxyz", AseAtomsAdaptor.get_atoms(nacl))
    for name in ("nacl.cif", "POSCAR", "nacl.extxyz"):
        s = read_structure(tmp_path / name)
        assert s.composition.reduced_formula == "NaCl" and len(s) == len(nacl)
        assert np.allclose(s.lattice.abc, nacl.lattice.abc, atol=1e-4)


def test_as_structure_accepts_every_representation(tmp_path, nacl):
    from pymatgen.io.ase import AseAtomsAdaptor

    nacl.to(filename=str(tmp_path / "nacl.cif"))
    inputs = [nacl, AseAtomsAdaptor.get_atoms(nacl), nacl.as_dict(), nacl.to(fmt="cif"), nacl.to(fmt="poscar"),
              str(tmp_path / "nacl.cif"), tmp_path / "nacl.cif"]
    for obj in inputs:
        assert len(as_structure(obj)) == len(nacl)
    assert len(as_structure("nacl.cif", base_dir=tmp_path)) == len(nacl)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "garbage.cif"
    bad.write_text("this is not a crystal\n")
    with pytest.raises(StructureError, match="unreadable structure file"):
        read_structure(bad)
    with pytest.raises(StructureError, match="no such file"):
        read_structure(tmp_path / "absent.cif")


def test_non_periodic_ase_atoms_are_rejected():
    from ase import Atoms

    molecule = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(StructureError, match="not a 3D-periodic crystal"):
        as_structure(molecule)


@pytest.mark.parametrize("case,message", [
    ("disordered", "disordered site"),
    ("partial", "partial occupancy"),
    ("overlap", "overlapping atoms"),
    ("nan", "NaN"),
    ("dummy", "unknown element"),
])
def test_validation_names_the_problem(case, message):
    lat = Lattice.cubic(4.0)
    if case == "disordered":
        s = Structure(lat, [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    elif case == "partial":
        s = Structure(lat, [{"Na": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    elif case == "overlap":
        s = Structure(lat, ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    elif case == "nan":
        s = Structure(lat, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        s._sites[1]._frac_coords = np.array([np.nan, 0.5, 0.5])  # noqa: SLF001 - pymatgen refuses NaN input
    else:
        s = Structure(lat, [DummySpecies("X"), "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(StructureError, match=message) as info:
        validate_structure(s)
    assert "\n" not in str(info.value)


def test_one_atom_cell_is_valid_but_too_small_cell_overlaps():
    validate_structure(Structure(Lattice.cubic(2.5), ["Cu"], [[0, 0, 0]]))
    with pytest.raises(StructureError, match="overlapping"):
        validate_structure(Structure(Lattice.cubic(0.3), ["Cu"], [[0, 0, 0]]))


def test_ideal_crystals_are_valid(crystals):
    for s in crystals.values():
        validate_structure(s)
