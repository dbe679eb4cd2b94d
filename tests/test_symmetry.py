"""Symmetry against textbook forms on ideal crystals of all seven crystal systems."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gmtnet.symmetry import (
    SYMMETRY_BACKENDS,
    SymmetryConstraints,
    SymmetryError,
    analyze_symmetry,
    check_group,
    crystal_system_from_number,
    refine_structure,
    symmetrize_structure,
)
from gmtnet.tensors import DIELECTRIC, ELASTIC, PIEZOELECTRIC, random_orthogonal, rotate_tensor

# name: (space group, point group, crystal system, independent constants diel/piezo/elastic)
EXPECTED = {
    "rocksalt_NaCl": (225, "m-3m", "cubic", (1, 0, 3)),
    "zincblende_GaAs": (216, "-43m", "cubic", (1, 1, 3)),
    "wurtzite_ZnO": (186, "6mm", "hexagonal", (2, 3, 5)),
    "rutile_TiO2": (136, "4/mmm", "tetragonal", (2, 0, 6)),
    "alpha_quartz": (154, "32", "trigonal", (2, 2, 6)),
    "orthorhombic_mm2": (25, "mm2", "orthorhombic", (3, 5, 9)),
    "orthorhombic_mmm": (47, "mmm", "orthorhombic", (3, 0, 9)),
    "monoclinic_2m": (14, "2/m", "monoclinic", (4, 0, 13)),
    "monoclinic_2": (4, "2", "monoclinic", (4, 8, 13)),
    "triclinic_1": (1, "1", "triclinic", (6, 18, 21)),
    "triclinic_-1": (2, "-1", "triclinic", (6, 0, 21)),
}
TYPES = (DIELECTRIC, PIEZOELECTRIC, ELASTIC)


def constraints(structure, ttype):
    return SymmetryConstraints.from_rotations(analyze_symmetry(structure).rotations, ttype)


def groups_as_names(c: SymmetryConstraints) -> set[frozenset[str]]:
    return {frozenset(("" if s > 0 else "-") + c.component_name(i) for i, s in g) for g in c.equal_groups}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_space_group_point_group_and_independent_counts(crystals, name):
    number, point_group, system, counts = EXPECTED[name]
    sym = analyze_symmetry(crystals[name])
    assert (sym.spacegroup_number, sym.point_group, sym.crystal_system) == (number, point_group, system)
    assert tuple(constraints(crystals[name], t).n_independent for t in TYPES) == counts


def _independent_by_rank(c: SymmetryConstraints) -> list[str]:
    """Reference form of ``independent_components``: the greedy pick in name order, each
    candidate kept when it raises the numerical rank of the picked projector rows."""
    names = sorted(((c.component_name(c._index(rep)), rep) for rep, _, _ in c.components),
                   key=lambda x: (len(x[0]), x[0]))
    chosen, rows = [], []
    for name, rep in names:
        row = c.projector[rep]
        if np.abs(row).max() > 1e-8 and np.linalg.matrix_rank(np.array(rows + [row]), tol=1e-8) > len(rows):
            rows.append(row)
            chosen.append(name)
    return chosen


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_independent_components_equal_the_rank_reference_in_any_frame(crystals, name, ttype, rng):
    """On all seven systems, in the standard frame and random proper and improper ones: as many
    names as independent constants, the same as the rank-based greedy pick."""
    counts = dict(zip(TYPES, EXPECTED[name][3]))
    rotations = analyze_symmetry(crystals[name]).rotations
    for frame in (np.eye(3), random_orthogonal(rng, improper=False), random_orthogonal(rng, improper=True)):
        c = SymmetryConstraints.from_rotations(frame @ rotations @ frame.T, ttype)
        assert c.independent_components == _independent_by_rank(c)
        assert len(c.independent_components) == counts[ttype]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_rotations_are_orthogonal_distinct_and_a_group(crystals, name):
    sym = analyze_symmetry(crystals[name])
    for r in sym.rotations:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    flat = sym.rotations.reshape(len(sym.rotations), -1)
    assert len(np.unique(np.round(flat, 8), axis=0)) == len(flat)
    check_group(sym.rotations)  # raises if not a group
    # ideal crystals: the raw lattice-derived matrices are the same
    np.testing.assert_allclose(sym.raw_rotations, sym.rotations, atol=1e-9)


def test_check_group_rejects_a_non_group():
    from gmtnet.symmetry.point_group import check_integer_group

    c4 = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(SymmetryError):
        check_group(np.stack([np.eye(3), c4]).astype(float))  # missing c4^2, c4^3
    with pytest.raises(SymmetryError):
        check_integer_group(np.stack([np.eye(3, dtype=int), c4]))
    with pytest.raises(SymmetryError, match="identity"):
        check_integer_group(np.stack([c4, c4 @ c4]))
    check_integer_group(np.stack([np.linalg.matrix_power(c4, n) for n in range(4)]))


def test_cubic_dielectric_is_one_scalar(crystals):
    c = constraints(crystals["rocksalt_NaCl"], DIELECTRIC)
    assert groups_as_names(c) == {frozenset({"eps11", "eps22", "eps33"})}
    assert {c.component_name(i) for i in c.zero_components} == {"eps12", "eps13", "eps23"}


def test_cubic_elastic_form(crystals):
    c = constraints(crystals["rocksalt_NaCl"], ELASTIC)
    assert groups_as_names(c) == {frozenset({"C11", "C22", "C33"}), frozenset({"C12", "C13", "C23"}),
                                  frozenset({"C44", "C55", "C66"})}
    assert len(c.zero_components) == 21 - 9


def test_hexagonal_elastic_and_piezo_form(crystals):
    c = constraints(crystals["wurtzite_ZnO"], ELASTIC)
    assert groups_as_names(c) == {frozenset({"C11", "C22"}), frozenset({"C13", "C23"}), frozenset({"C44", "C55"})}
    assert len(c.zero_components) == 12  # C66 = (C11 - C12)/2 is a linear relation, not an equality
    p = constraints(crystals["wurtzite_ZnO"], PIEZOELECTRIC)
    assert groups_as_names(p) == {frozenset({"e15", "e24"}), frozenset({"e31", "e32"})}
    nonzero = {"e15", "e24", "e31", "e32", "e33"}
    assert {p.component_name(i) for i in p.zero_components} == {
        f"e{i}{j}" for i in (1, 2, 3) for j in range(1, 7)} - nonzero


def test_quartz_piezo_has_opposite_signs(crystals):
    p = constraints(crystals["alpha_quartz"], PIEZOELECTRIC)
    assert groups_as_names(p) == {frozenset({"e11", "-e12", "-e26"}), frozenset({"e14", "-e25"})}
    e = constraints(crystals["alpha_quartz"], ELASTIC)
    assert frozenset({"C14", "-C24", "C56"}) in groups_as_names(e)


def test_tetragonal_dielectric_and_centrosymmetric_piezo(crystals):
    d = constraints(crystals["rutile_TiO2"], DIELECTRIC)
    assert groups_as_names(d) == {frozenset({"eps11", "eps22"})}
    for name in ("rocksalt_NaCl", "rutile_TiO2", "orthorhombic_mmm", "monoclinic_2m", "triclinic_-1"):
        p = constraints(crystals[name], PIEZOELECTRIC)
        assert p.zero_mask().all(), name
        assert analyze_symmetry(crystals[name]).is_centrosymmetric


def test_monoclinic_unique_axis_b_along_y(crystals):
    d = constraints(crystals["monoclinic_2"], DIELECTRIC)
    assert {d.component_name(i) for i in d.zero_components} == {"eps12", "eps23"}
    assert d.equal_groups == []


def test_triclinic_p1_forces_nothing(crystals):
    for ttype in TYPES:
        c = constraints(crystals["triclinic_1"], ttype)
        assert c.zero_components == [] and c.equal_groups == []


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_projection_is_exact_invariant_and_idempotent(crystals, name, ttype, rng):
    sym = analyze_symmetry(crystals[name])
    c = SymmetryConstraints.from_rotations(sym.rotations, ttype)
    np.testing.assert_allclose(c.projector @ c.projector, c.projector, atol=1e-12)
    t = c.project(rng.normal(size=ttype.shape))
    assert np.all(t[c.zero_mask()] == 0.0)  # exactly zero
    for a, b, s in c.equalities:
        assert t[b] == s * t[a]  # bit-for-bit
    for r in sym.rotations:  # invariant under every operation (Neumann's principle)
        np.testing.assert_allclose(rotate_tensor(t, r, ttype), t, atol=1e-10)
    np.testing.assert_allclose(c.project(t), t, rtol=0, atol=1e-12)


def test_projection_of_a_batch_matches_one_by_one(crystals, rng):
    c = constraints(crystals["alpha_quartz"], ELASTIC)
    batch = rng.normal(size=(4, 3, 3, 3, 3))
    projected = c.project(batch)
    np.testing.assert_allclose(projected, np.stack([c.project(t) for t in batch]), rtol=0, atol=1e-12)
    assert np.all(projected[:, c.zero_mask()] == 0.0)


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
def test_batched_projectors_and_snapping_equal_one_crystal_at_a_time(crystals, ttype, rng):
    """reynolds_projectors / project_each (one call for many crystals) against the per-crystal
    projector and project, on every ideal crystal, in a shuffled order and in small blocks."""
    from gmtnet.symmetry import project_each, reynolds_projector, reynolds_projectors
    from gmtnet.tensors.transform import tensor_action_matrix

    groups = [analyze_symmetry(crystals[n]).rotations for n in EXPECTED]
    singles = [reynolds_projector(g, ttype) for g in groups]
    order = rng.permutation(len(groups))
    batched = reynolds_projectors([groups[i] for i in order], ttype)
    for i, p in zip(order, batched):
        np.testing.assert_array_equal(p, singles[i])  # independent of the batch it is computed in
    for r, p in zip(groups, singles):  # against the definition: the mean of R kron ... kron R, then S
        action = np.mean([tensor_action_matrix(q, ttype) for q in r], axis=0)
        np.testing.assert_allclose(p, action @ ttype.index_symmetrizer, rtol=0, atol=1e-13)
    cons = [SymmetryConstraints.from_rotations(g, ttype) for g in groups]
    tensors = rng.normal(size=(len(cons), *ttype.shape))
    together = project_each(cons, tensors)
    for c, t, u in zip(cons, tensors, together):
        np.testing.assert_allclose(u, c.project(t), rtol=0, atol=1e-12)
        assert np.array_equal(u == 0.0, c.project(t) == 0.0)
        assert np.all(u[c.zero_mask()] == 0.0)
        for a, b, sign in c.equalities:
            assert u[b] == sign * u[a]  # bit for bit
    assert project_each([], np.zeros((0, *ttype.shape))).shape == (0, *ttype.shape)
    with pytest.raises(ValueError, match="one tensor type"):
        project_each([cons[0], SymmetryConstraints.from_rotations(groups[0], DIELECTRIC if ttype is not DIELECTRIC
                                                                  else ELASTIC)], tensors[:2])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_symmetry_rotates_with_the_crystal(crystals, seed):
    """Rotating the crystal by Q conjugates its point group: R' = Q R Q^T, so the projected
    tensors rotate with it (for proper and improper Q)."""
    rng = np.random.default_rng(seed)
    q = random_orthogonal(rng)
    s = crystals["wurtzite_ZnO"]
    from pymatgen.core import Lattice, Structure

    rotated = Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords)
    c0, c1 = constraints(s, PIEZOELECTRIC), constraints(rotated, PIEZOELECTRIC)
    t = rng.normal(size=(3, 3, 3))
    np.testing.assert_allclose(c1.project(rotate_tensor(t, q, PIEZOELECTRIC), exact=False),
                               rotate_tensor(c0.project(t, exact=False), q, PIEZOELECTRIC), atol=1e-9)


# ---- the two symmetry backends ------------------------------------------------------------------
def _same_symmetry(a, b) -> None:
    assert (a.spacegroup_number, a.international, a.point_group, a.crystal_system) == (
        b.spacegroup_number, b.international, b.point_group, b.crystal_system)
    np.testing.assert_array_equal(a.lattice_rotations, b.lattice_rotations)
    np.testing.assert_allclose(a.rotations, b.rotations, atol=1e-12)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_moyopy_backend_finds_the_same_point_group_as_spglib(crystals, name):
    number, point_group, system, _ = EXPECTED[name]
    fast = analyze_symmetry(crystals[name], backend="moyopy")
    assert fast.backend == "moyopy" and analyze_symmetry(crystals[name]).backend == "spglib"
    assert (fast.spacegroup_number, fast.point_group, fast.crystal_system) == (number, point_group, system)
    _same_symmetry(fast, analyze_symmetry(crystals[name], backend="spglib"))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["wurtzite_ZnO", "alpha_quartz", "zincblende_GaAs",
                                                             "monoclinic_2", "orthorhombic_mm2"]))
def test_backends_agree_in_any_frame_origin_and_atom_order(crystals, seed, name):
    """Rotated (proper or improper), translated and permuted copies: both backends give the same
    group, and it is the original one conjugated by the rotation."""
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(seed)
    s = crystals[name]
    q = random_orthogonal(rng, improper=bool(rng.integers(2)))
    order = rng.permutation(len(s))
    moved = Structure(Lattice(s.lattice.matrix @ q.T), [s.species[i] for i in order],
                      (s.frac_coords[order] + rng.uniform(size=3)) % 1.0)
    a, b = analyze_symmetry(moved, backend="spglib"), analyze_symmetry(moved, backend="moyopy")
    _same_symmetry(a, b)
    conjugated = np.einsum("ij,njk,lk->nil", q, analyze_symmetry(s).rotations, q)
    key = lambda m: np.round(m.reshape(len(m), -1), 8).tolist()  # noqa: E731
    assert sorted(key(conjugated)) == sorted(key(b.rotations))


def test_backends_agree_on_the_mp_fixture_crystals(mp_root):
    from gmtnet.data import load_dataset

    structures = [r.structure for task in ("dielectric", "piezoelectric", "elastic")
                  for r in load_dataset(task, root=mp_root)]
    assert len(structures) > 20
    for s in structures:
        _same_symmetry(analyze_symmetry(s, backend="spglib"), analyze_symmetry(s, backend="moyopy"))


def test_unknown_backend_is_refused_by_name(crystals):
    assert SYMMETRY_BACKENDS == ("spglib", "moyopy")
    with pytest.raises(ValueError, match="unknown symmetry backend 'fast'"):
        analyze_symmetry(crystals["rocksalt_NaCl"], backend="fast")


@pytest.mark.parametrize("name", ["alpha_quartz", "wurtzite_ZnO", "zincblende_GaAs", "monoclinic_2m"])
def test_refinement_from_a_moyopy_analysis_is_exact_and_near_spglibs(crystals, rng, name):
    """moyopy's own standard cell idealizes the positions (no spglib analysis): exactly symmetric,
    and within the distortion of spglib's idealization, also in a cell that is not standard."""
    from pymatgen.core import Lattice, Structure

    ideal = crystals[name]
    sheared = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]) @ ideal.lattice.matrix  # another cell of the crystal
    crystal = Structure(Lattice(sheared), ideal.species, ideal.cart_coords + [0.37, 0.11, -0.52],
                        coords_are_cartesian=True)
    distorted = _distort(crystal, rng)
    a = refine_structure(distorted, symmetry=analyze_symmetry(distorted, 1e-2, backend="moyopy"))
    b = symmetrize_structure(distorted, 1e-2)
    np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix, atol=1e-12)
    gap = a.frac_coords - b.frac_coords
    assert np.abs((gap - np.round(gap)) @ a.lattice.matrix).max() < 2e-3
    assert analyze_symmetry(a, symprec=1e-7).spacegroup_number == analyze_symmetry(ideal).spacegroup_number


def test_crystal_system_from_number():
    assert [crystal_system_from_number(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)] == [
        "triclinic", "triclinic", "monoclinic", "monoclinic", "orthorhombic", "orthorhombic", "tetragonal",
        "tetragonal", "trigonal", "trigonal", "hexagonal", "hexagonal", "cubic", "cubic"]
    with pytest.raises(ValueError):
        crystal_system_from_number(231)


def _distort(structure, rng, amount=5e-5):
    from pymatgen.core import Lattice, Structure

    lat = structure.lattice.matrix @ (np.eye(3) + amount * rng.normal(size=(3, 3)))
    frac = structure.frac_coords + amount * rng.normal(size=structure.frac_coords.shape)
    return Structure(Lattice(lat), structure.species, frac)


@pytest.mark.parametrize("name", ["wurtzite_ZnO", "alpha_quartz", "rutile_TiO2", "zincblende_GaAs", "monoclinic_2",
                                  "orthorhombic_mm2"])
def test_refinement_restores_exact_symmetry_in_the_same_frame_and_order(crystals, name, rng):
    ideal = crystals[name]
    distorted = _distort(ideal, rng)
    number = analyze_symmetry(ideal).spacegroup_number
    assert analyze_symmetry(distorted, symprec=1e-6).spacegroup_number != number  # distortion is real
    assert analyze_symmetry(distorted, symprec=1e-2).spacegroup_number == number  # and within tolerance
    refined = symmetrize_structure(distorted, 1e-2)
    # same atom order and species, same orientation, tiny displacement
    assert [s.species_string for s in refined] == [s.species_string for s in distorted]
    assert np.abs(refined.lattice.matrix - distorted.lattice.matrix).max() < 1e-2
    assert np.abs(refined.cart_coords - distorted.cart_coords).max() < 1e-2
    tight = analyze_symmetry(refined, symprec=1e-6)
    assert tight.spacegroup_number == analyze_symmetry(ideal).spacegroup_number
    np.testing.assert_allclose(tight.raw_rotations, tight.rotations, atol=1e-9)


def test_refinement_leaves_an_ideal_crystal_unchanged(crystals):
    ideal = crystals["alpha_quartz"]
    refined = symmetrize_structure(ideal)
    np.testing.assert_allclose(refined.lattice.matrix, ideal.lattice.matrix, atol=1e-10)
    np.testing.assert_allclose(refined.cart_coords, ideal.cart_coords, atol=1e-10)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_reynolds_projector_of_axial_and_unsymmetrized_types_equals_its_definition(crystals, order):
    """The one-matrix-product group average against mean(det(R) R kron ... kron R) S, for axial
    types without index symmetry (odd and even orders split into two Kronecker halves)."""
    from gmtnet.tensors import TensorType
    from gmtnet.tensors.transform import tensor_action_matrix

    ttype = TensorType(f"axial{order}", order, "ijkl"[:order], axial=True)
    for name in ("alpha_quartz", "zincblende_GaAs", "monoclinic_2m"):
        rots = analyze_symmetry(crystals[name]).rotations
        action = np.mean([tensor_action_matrix(q, ttype) for q in rots], axis=0)
        np.testing.assert_allclose(SymmetryConstraints.from_rotations(rots, ttype).projector,
                                   action @ ttype.index_symmetrizer, rtol=0, atol=1e-13)


def test_constraints_of_a_graph_without_a_point_group_are_refused_by_name(crystals):
    from gmtnet.graph import build_graph
    from gmtnet.symmetry import PointGroupNeeds, point_group_data

    (record,) = point_group_data([build_graph(crystals["rutile_TiO2"])], PointGroupNeeds(ttype=ELASTIC))
    with pytest.raises(ValueError, match="no point group"):
        record.constraints_of(ELASTIC)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_forced_groups_of_a_block_equal_the_greedy_grouping(data):
    """The vectorised grouping of several crystals' components (equivalence classes of rows equal
    up to sign) equals the greedy loop it replaces, also where rows are equal within the
    tolerance but not transitively (that crystal falls back to the loop)."""
    from gmtnet.symmetry.constraints import _ROW_TOL, _greedy_groups, _grouped

    n_crystals, n_comp = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 7))
    rows = []
    for _ in range(n_crystals):
        prototypes = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.25, 0.0, -1.0]])
        choice = data.draw(st.lists(st.integers(0, 2), min_size=n_comp, max_size=n_comp))
        sign = data.draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n_comp, max_size=n_comp))
        # shifts of 0.6 tolerance: neighbours equal, rows two shifts apart not (non-transitive)
        shift = data.draw(st.lists(st.integers(0, 2), min_size=n_comp, max_size=n_comp))
        rows.append(prototypes[choice] * np.array(sign)[:, None] + 0.6 * _ROW_TOL * np.array(shift)[:, None])
    rows = np.stack(rows)  # [b, C, 3]
    same = np.abs(rows[:, :, None] - rows[:, None]).max(axis=3) < _ROW_TOL
    opposite = np.abs(rows[:, :, None] + rows[:, None]).max(axis=3) < _ROW_TOL
    zero = np.abs(rows).max(axis=2) < _ROW_TOL
    for k, pattern in enumerate(_grouped(zero, same, opposite)):
        reference = _greedy_groups(zero[k], same[k].tolist(), opposite[k].tolist())
        assert pattern.n_groups == reference.n_groups
        for got, want in zip(pattern[:4], reference[:4]):
            assert np.array_equal(got, want) and got.dtype == want.dtype


# ---- supercells: the crystal's point group, not the lattice's ---------------------------------
SUPERCELL_CRYSTALS = ("rocksalt_NaCl", "zincblende_GaAs", "wurtzite_ZnO", "rutile_TiO2", "alpha_quartz")


@pytest.mark.parametrize("name", SUPERCELL_CRYSTALS)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_supercell_has_the_point_group_of_its_crystal(crystals, name, axis, rng):
    """A 2-fold supercell along each axis (in a random proper or improper frame) keeps every
    forced zero and equality of the crystal: the point group comes from the crystal."""
    from gmtnet.symmetry import crystal_symmetry

    crystal = crystals[name].copy()  # the fixture is shared: never rotate it in place
    scale = [1, 1, 1]
    scale[axis] = 2
    supercell = crystal.copy()
    supercell.make_supercell(scale)
    r = random_orthogonal(rng)
    for s in (crystal, supercell):
        s.lattice = s.lattice.__class__(s.lattice.matrix @ r.T)
    _, sym = crystal_symmetry(crystal)
    cell, sym_super = crystal_symmetry(supercell)
    assert sym_super.order == sym.order == sym.crystal_order and sym_super.complete
    assert sym_super.point_group == EXPECTED[name][1]
    assert len(cell) <= len(supercell)  # the supercell, or its primitive cell where the lattice lacks rotations
    assert np.isclose(len(cell) / cell.lattice.volume, len(crystal) / crystal.lattice.volume)
    assert np.allclose(np.round(cell.lattice.matrix @ np.linalg.inv(supercell.lattice.matrix) * 4),
                       cell.lattice.matrix @ np.linalg.inv(supercell.lattice.matrix) * 4, atol=1e-6)  # same frame
    for ttype, n_free in zip(TYPES, EXPECTED[name][3]):
        a = SymmetryConstraints.from_structure(crystal, ttype)
        b = SymmetryConstraints.from_structure(supercell, ttype)
        assert b.n_independent == n_free and b.zero_components == a.zero_components
        assert groups_as_names(b) == groups_as_names(a)
        np.testing.assert_allclose(b.projector, a.projector, atol=1e-9)


def test_a_cubic_supercell_was_only_tetragonal_before_the_crystal_symmetry(crystals):
    """The cell-level analysis of a 1x1x2 cubic supercell misses rotations (what a lattice-only
    point group gives); the crystal-level one does not."""
    supercell = crystals["rocksalt_NaCl"].copy()
    supercell.make_supercell([1, 1, 2])
    cell_only = analyze_symmetry(supercell)
    assert cell_only.point_group == "m-3m" and not cell_only.complete
    assert SymmetryConstraints.from_rotations(cell_only.rotations, DIELECTRIC).n_independent == 2
    assert SymmetryConstraints.from_structure(supercell, DIELECTRIC).n_independent == 1


def test_symmetry_tolerance_is_validated():
    from gmtnet.symmetry import check_tolerance

    for bad in (-1.0, 0.0, float("nan"), float("inf"), 2.0):
        with pytest.raises(ValueError, match="symprec must be"):
            check_tolerance(bad)
    check_tolerance(1e-5)
