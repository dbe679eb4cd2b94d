"""Tensor algebra against its definitions: Voigt (vs pymatgen), irreps (vs Wigner D), O(3) action."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gmtnet.tensors import (
    DIELECTRIC,
    ELASTIC,
    PIEZOELECTRIC,
    TENSOR_TYPES,
    TensorType,
    VASP_VOIGT_ORDER,
    from_irreps,
    from_voigt,
    get_tensor_type,
    random_orthogonal,
    rotate_tensor,
    tensor_action_matrix,
    to_irreps,
    to_pymatgen,
    to_voigt,
)
from gmtnet.tensors.irreps import float64_default

TYPES = list(TENSOR_TYPES.values())
finite = st.floats(-1e3, 1e3, allow_nan=False, width=64)


def symmetric_tensor(ttype: TensorType, values: np.ndarray) -> np.ndarray:
    """A tensor obeying the type's index symmetry: project a random array with the symmetrizer."""
    return (ttype.index_symmetrizer @ values.reshape(-1)).reshape(ttype.shape)


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_voigt_round_trip_and_pymatgen_agreement(ttype, data):
    values = data.draw(arrays(np.float64, (3**ttype.order,), elements=finite))
    full = symmetric_tensor(ttype, values)
    voigt = to_voigt(full, ttype)
    assert voigt.shape == ttype.voigt_shape
    np.testing.assert_allclose(from_voigt(voigt, ttype), full, rtol=0, atol=1e-9)
    # pymatgen's own conversion (no engineering factors) must agree both ways
    pmg = to_pymatgen(full, ttype)
    np.testing.assert_allclose(np.asarray(pmg.voigt), voigt, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(type(pmg).from_voigt(voigt)), full, rtol=0, atol=1e-9)


def test_voigt_known_entries_match_pymatgen_convention():
    c = np.zeros((6, 6))
    c[3, 4] = c[4, 3] = 7.0  # C45 = C_yz,xz
    full = from_voigt(c, ELASTIC)
    assert full[1, 2, 0, 2] == full[2, 1, 2, 0] == full[0, 2, 1, 2] == 7.0
    e = np.zeros((3, 6))
    e[2, 5] = 3.0  # e36 = e_z,xy
    assert from_voigt(e, PIEZOELECTRIC)[2, 0, 1] == from_voigt(e, PIEZOELECTRIC)[2, 1, 0] == 3.0


def test_vasp_voigt_order_is_a_permutation_of_pymatgen_order():
    e_vasp = np.arange(18.0).reshape(3, 6)
    full = from_voigt(e_vasp, PIEZOELECTRIC, VASP_VOIGT_ORDER)
    e_pmg = to_voigt(full, PIEZOELECTRIC)
    np.testing.assert_array_equal(e_pmg, e_vasp[:, [0, 1, 2, 4, 5, 3]])


def test_voigt_batched_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 6, 6))
    v = 0.5 * (v + v.transpose(0, 2, 1))
    full_np = from_voigt(v, ELASTIC)
    full_t = from_voigt(torch.tensor(v), ELASTIC)
    np.testing.assert_array_equal(full_t.numpy(), full_np)
    np.testing.assert_allclose(to_voigt(torch.tensor(full_np), ELASTIC).numpy(), v, atol=1e-12)


def test_wrong_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="Voigt form must have shape"):
        from_voigt(np.zeros((3, 3)), PIEZOELECTRIC)
    with pytest.raises(ValueError, match="must have shape"):
        to_voigt(np.zeros((3, 3)), ELASTIC)
    with pytest.raises(ValueError, match="unknown task"):
        get_tensor_type("magnetic")


@pytest.mark.parametrize("ttype,expected", [(DIELECTRIC, "1x0e+1x2e"), (PIEZOELECTRIC, "2x1o+1x2o+1x3o"),
                                            (ELASTIC, "2x0e+2x2e+1x4e")], ids=["diel", "piezo", "elastic"])
def test_irreps_of_the_three_types(ttype, expected):
    assert str(ttype.irreps) == expected
    assert ttype.n_independent == ttype.irreps.dim


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
def test_irreps_round_trip_is_the_index_symmetrizer(ttype, rng):
    raw = rng.normal(size=ttype.shape)
    x = to_irreps(torch.tensor(raw), ttype)
    back = from_irreps(x, ttype).numpy()
    np.testing.assert_allclose(back, symmetric_tensor(ttype, raw.reshape(-1)), atol=1e-12)


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("improper", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_irreps_are_equivariant_with_wigner_d_including_parity(ttype, improper, dtype, tol, rng):
    """to_irreps(R . T) == D(R) to_irreps(T), for proper and improper R (parity included)."""
    for _ in range(5):
        r = random_orthogonal(rng, improper=improper)
        t = symmetric_tensor(ttype, rng.normal(size=3**ttype.order))
        with float64_default():
            d = ttype.irreps.D_from_matrix(torch.tensor(r))
        lhs = to_irreps(torch.tensor(rotate_tensor(t, r, ttype), dtype=dtype), ttype)
        rhs = to_irreps(torch.tensor(t, dtype=dtype), ttype) @ d.to(dtype).T
        scale = float(torch.linalg.norm(rhs)) + 1e-12
        assert float(torch.linalg.norm(lhs - rhs)) / scale < tol


def test_wigner_d_identities(rng):
    """D(R1 R2) = D(R1) D(R2) and D^1(R) = R for the 1o irrep, in float64."""
    from e3nn import o3

    irreps = o3.Irreps("1o+2e+3o+4e")
    with float64_default():
        for _ in range(5):
            r1, r2 = random_orthogonal(rng), random_orthogonal(rng)
            d12 = irreps.D_from_matrix(torch.tensor(r1 @ r2))
            d1, d2 = irreps.D_from_matrix(torch.tensor(r1)), irreps.D_from_matrix(torch.tensor(r2))
            assert torch.allclose(d12, d1 @ d2, atol=1e-9)
            assert np.allclose(o3.Irreps("1o").D_from_matrix(torch.tensor(r1)).numpy(), r1, atol=1e-12)


@pytest.mark.parametrize("ttype", TYPES, ids=lambda t: t.name)
def test_rotation_is_a_group_action(ttype, rng):
    t = rng.normal(size=ttype.shape)
    r1, r2 = random_orthogonal(rng, improper=True), random_orthogonal(rng, improper=False)
    np.testing.assert_allclose(rotate_tensor(rotate_tensor(t, r2, ttype), r1, ttype),
                               rotate_tensor(t, r1 @ r2, ttype), atol=1e-10)
    # the Kronecker matrix is the same map on flattened tensors
    np.testing.assert_allclose(tensor_action_matrix(r1, ttype) @ t.reshape(-1),
                               rotate_tensor(t, r1, ttype).reshape(-1), atol=1e-10)
    # torch path agrees with numpy
    np.testing.assert_allclose(rotate_tensor(torch.tensor(t), r1, ttype).numpy(), rotate_tensor(t, r1, ttype),
                               atol=1e-12)


def test_polar_rank3_changes_sign_under_inversion_and_axial_does_not(rng):
    t = rng.normal(size=(3, 3, 3))
    np.testing.assert_allclose(rotate_tensor(t, -np.eye(3), PIEZOELECTRIC), -t)
    axial = TensorType("axial3", 3, "ijk", axial=True)
    np.testing.assert_allclose(rotate_tensor(t, -np.eye(3), axial), t)


def test_dielectric_matches_paper_formula(rng):
    eps = rng.normal(size=(3, 3))
    r = random_orthogonal(rng)
    np.testing.assert_allclose(rotate_tensor(eps, r, DIELECTRIC), r @ eps @ r.T, atol=1e-12)


def test_custom_tensor_type_gets_irreps_and_symmetrizer():
    antisym = TensorType("rotation_like", 2, "ij=-ji")
    assert str(antisym.irreps) == "1x1e"
    with pytest.raises(ValueError, match="indices"):
        TensorType("bad", 3, "ij=ji")


# ---- exact definiteness ----------------------------------------------------------------------
from gmtnet.tensors import inertia, is_positive_definite  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 6), elements=finite))
def test_inertia_matches_the_eigenvalues_of_well_separated_matrices(a):
    sym = 0.5 * (a + a.T)
    eig = np.linalg.eigvalsh(sym)
    if np.abs(eig).min() <= 1e-6 * max(1.0, np.abs(eig).max()):
        return  # near-singular: a float eigensolver cannot decide these
    counts = inertia(a)
    assert (counts.positive, counts.zero, counts.negative) == (int((eig > 0).sum()), 0, int((eig < 0).sum()))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_inertia_counts_exact_zeros_of_singular_integer_matrices(rank, seed):
    """B^T D B with B integer (rank x 6) and D = +-1 has exactly 6 - rank zero eigenvalues, which a
    float eigensolver returns as +-1e-15 of either sign; Sylvester's law gives the other counts."""
    rng = np.random.default_rng(seed)
    b = rng.integers(-5, 6, size=(rank, 6)).astype(float)
    if np.linalg.matrix_rank(b) < rank:
        return
    signs = rng.choice([-1.0, 1.0], size=rank)
    m = b.T @ np.diag(signs) @ b  # exact in float64: small integers
    counts = inertia(m)
    assert (counts.positive, counts.zero, counts.negative) == (int((signs > 0).sum()), 6 - rank, int((signs < 0).sum()))
    assert not is_positive_definite(m) or rank == 6 and (signs > 0).all()


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1e-14, -1e-14, 1e-9, -1e-9, 1e-3, -1e-3]))
def test_positive_definite_equals_the_exact_inertia_also_near_singular(seed, shift):
    """The floating-point shortcut of is_positive_definite decides exactly as the rational
    elimination, on positive semidefinite matrices with one exact zero eigenvalue shifted by
    amounts from inside the rounding band to far outside it."""
    rng = np.random.default_rng(seed)
    b = rng.integers(-5, 6, size=(5, 6)).astype(float)
    m = b.T @ b + shift * np.eye(6)  # b^T b: exact, singular (rank <= 5)
    assert is_positive_definite(m) == inertia(m).positive_definite
    scaled = m * rng.uniform(1e-3, 1e3)
    assert is_positive_definite(scaled) == inertia(scaled).positive_definite


def test_inertia_of_zero_diagonals_and_congruence(rng):
    assert inertia(np.array([[0.0, 2.0], [2.0, 0.0]])) == inertia(np.diag([1.0, -1.0]))  # needs a 2x2 pivot
    assert inertia(np.zeros((3, 3))).zero == 3
    a = rng.normal(size=(6, 6))
    a = a @ a.T + 0.1 * np.eye(6)  # positive definite
    p = rng.normal(size=(6, 6))  # invertible almost surely: congruence keeps the inertia
    assert is_positive_definite(a) and is_positive_definite(p @ a @ p.T)
    assert not is_positive_definite(-a)
    with pytest.raises(ValueError, match="square"):
        inertia(np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        inertia(np.array([[np.nan]]))


def test_stiffness_definiteness_is_the_same_in_voigt_and_mandel_form(rng):
    """The Voigt matrix (no engineering factors) and the Mandel matrix D C D are congruent."""
    d = np.diag([1, 1, 1, np.sqrt(2), np.sqrt(2), np.sqrt(2)])
    for _ in range(20):
        v = rng.normal(size=(6, 6))
        v = v + v.T + rng.uniform(-2, 6) * np.eye(6)
        assert inertia(v) == inertia(d @ v @ d)


def test_reduced_bases_are_kept_on_disk_and_a_bad_file_is_recomputed(tmp_path, monkeypatch):
    """The irreps and change of basis of a formula, computed once, are read back from
    $GMTNET_DATA/bases equal to e3nn's; a file that is not an orthonormal basis is replaced."""
    from e3nn.io import CartesianTensor

    from gmtnet.tensors import irreps as irreps_module

    monkeypatch.setenv("GMTNET_DATA", str(tmp_path))
    formula = "ijk=ikj"
    try:
        irreps_module._reduced_basis.cache_clear()
        computed = irreps_module._reduced_basis(formula)
        (stored,) = tmp_path.glob("bases/*/ijk_ikj.npz")
        irreps_module._reduced_basis.cache_clear()
        read = irreps_module._reduced_basis(formula)
        assert read[0] == computed[0] == str(CartesianTensor(formula)) and torch.equal(read[1], computed[1])
        np.savez(stored, irreps=np.array(read[0]), q=2 * read[1].numpy())  # not orthonormal
        irreps_module._reduced_basis.cache_clear()
        again = irreps_module._reduced_basis(formula)
        assert torch.equal(again[1], computed[1])
        with np.load(stored, allow_pickle=False) as fixed:
            assert np.array_equal(fixed["q"], computed[1].numpy())
    finally:
        irreps_module._reduced_basis.cache_clear()
