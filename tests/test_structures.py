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
    with pytest.raises(StructureError, match="not a CIF file: no data_ block"):
        read_structure(bad)
    other = tmp_path / "garbage.xyz"
    other.write_text("this is not a crystal\n")
    with pytest.raises(StructureError, match="unreadable structure file"):
        read_structure(other)
    with pytest.raises(StructureError, match="No such file or directory"):
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


def test_cif_and_poscar_that_lie_about_their_atoms_are_refused(tmp_path):
    from gmtnet.data.structures import structure_from_text

    poscar = "x\n1.0\n5.6 0 0\n0 5.6 0\n0 0 5.6\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    assert len(structure_from_text(poscar)) == 2
    (tmp_path / "POSCAR").write_text(poscar + "0.5 0 0\n")
    with pytest.raises(StructureError, match="counts line lists 2 atoms"):
        read_structure(tmp_path / "POSCAR")
    with pytest.raises(StructureError, match="counts line lists 2 atoms"):
        structure_from_text(poscar + "0.5 0 0\n")
    (tmp_path / "CONTCAR").write_text(poscar + "\n  0 0 0\n  0 0 0\n")  # velocities after a blank line: fine
    assert len(read_structure(tmp_path / "CONTCAR")) == 2
    cif = ("data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n"
           "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\n"
           "loop_\n_symmetry_equiv_pos_as_xyz\n 'x, y, z'\nloop_\n_atom_site_label\n_atom_site_type_symbol\n"
           "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\n"
           "Na1 Na 0 0 0 1\nCl1 Cl 0.5 0.5 0.5 1\n")
    assert len(structure_from_text(cif)) == 2
    with pytest.raises(StructureError, match="several elements share one site"):
        structure_from_text(cif + "K1 K 0 0 0 1\n")
    with pytest.raises(StructureError, match="cell length b = -4 is not a positive length"):
        structure_from_text(cif.replace("_cell_length_b 4", "_cell_length_b -4"))
    with pytest.raises(StructureError, match="cell angle gamma = 190"):
        structure_from_text(cif.replace("_cell_angle_gamma 90", "_cell_angle_gamma 190"))


def test_absurd_cells_are_refused_before_any_neighbour_search():
    from pymatgen.core import Lattice, Structure

    with pytest.raises(StructureError, match="lattice vector is 5.4e\\+07 A long"):
        validate_structure(Structure(Lattice.cubic(5.4e7), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    with pytest.raises(StructureError, match="A\\^3 of cell per atom"):
        validate_structure(Structure(Lattice.cubic(300.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    validate_structure(Structure(Lattice.cubic(20.0), ["C", "O"], [[0, 0, 0], [0.06, 0, 0]]))  # a molecule: warned later
