"""Physical bounds by construction: permittivity eigenvalues above 1, positive-definite stiffness,
for any weights and any crystal, with exact equivariance and exact crystal symmetry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pymatgen.core import Lattice, Structure

from gmtnet.model import ModelConfig, build_model
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import DIELECTRIC, ELASTIC, PIEZOELECTRIC, random_orthogonal, rotate_tensor
from gmtnet.tensors.bounds import bounded, operator_eigenvalues

BOUNDED = (DIELECTRIC, ELASTIC)
TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)


def symmetric(ttype, values: np.ndarray) -> np.ndarray:
    return (ttype.index_symmetrizer @ values.reshape(-1)).reshape(ttype.shape)


@pytest.mark.parametrize("ttype", BOUNDED, ids=lambda t: t.name)
@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float64, 81, elements=st.floats(-30, 30)), scale=st.floats(1e-3, 1e3))
def test_bounded_tensors_obey_the_bound_and_the_index_symmetry(ttype, values, scale):
    raw = symmetric(ttype, values[: 3 ** ttype.order])
    out = bounded(torch.as_tensor(raw)[None], ttype, scale)[0].numpy()
    assert np.all(operator_eigenvalues(out, ttype) > ttype.lower_bound)
    np.testing.assert_allclose(symmetric(ttype, out), out, atol=1e-9 * max(1.0, np.abs(out).max()))


@pytest.mark.parametrize("ttype", BOUNDED, ids=lambda t: t.name)
@pytest.mark.parametrize("improper", [False, True])
def test_bounded_commutes_with_rotations_and_reflections(ttype, improper, rng):
    for _ in range(5):
        raw = symmetric(ttype, rng.normal(size=3 ** ttype.order))
        q = random_orthogonal(rng, improper=improper)
        a = bounded(torch.as_tensor(rotate_tensor(raw, q, ttype))[None], ttype, 7.0)[0].numpy()
        b = rotate_tensor(bounded(torch.as_tensor(raw)[None], ttype, 7.0)[0].numpy(), q, ttype)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


@pytest.mark.parametrize("ttype", BOUNDED, ids=lambda t: t.name)
def test_gradients_are_finite_at_degenerate_eigenvalues_and_near_the_bound(ttype):
    """A cubic crystal's operator has repeated eigenvalues (maps through an eigendecomposition
    have infinite derivatives there); a very negative input puts the output at the bound."""
    from gmtnet.tensors.bounds import operator_basis

    b = torch.as_tensor(operator_basis(ttype))
    identity = (b.T @ b).reshape(ttype.shape)  # the identity operator: every eigenvalue equal
    for raw in (0.3 * identity, -40.0 * identity, torch.zeros(ttype.shape, dtype=torch.float64)):
        x = raw.clone()[None].requires_grad_(True)
        out = bounded(x, ttype, 10.0)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(out).all()
    assert np.all(operator_eigenvalues(bounded((-40.0 * identity)[None], ttype, 10.0)[0].numpy(), ttype)
                  > ttype.lower_bound)


def test_the_bound_is_the_stability_criterion():
    """For the stiffness: positive definite as an operator on strains iff the Voigt matrix is
    (Born stability); for permittivity: the ordinary eigenvalues."""
    from gmtnet.tensors import from_voigt, inertia

    rng = np.random.default_rng(3)
    for _ in range(20):
        v = rng.normal(size=(6, 6))
        v = v + v.T + rng.uniform(-3, 8) * np.eye(6)
        c = from_voigt(v, ELASTIC)
        assert (operator_eigenvalues(c, ELASTIC).min() > 0) == inertia(v).positive_definite
    eps = np.diag([0.5, 2.0, 3.0])
    np.testing.assert_allclose(operator_eigenvalues(eps, DIELECTRIC), [0.5, 2.0, 3.0], atol=1e-12)


def random_crystal(seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    lattice = Lattice.from_parameters(*rng.uniform(3.5, 6.5, 3), *rng.uniform(70, 110, 3))
    n = int(rng.integers(1, 5))
    species = [str(s) for s in rng.choice(["Na", "Cl", "Si", "O", "Zn", "Ti"], n)]
    coords = rng.random((n, 3))
    s = Structure(lattice, species, coords)
    return s if s.distance_matrix[np.triu_indices(n, 1)].min(initial=9.0) > 1.0 else random_crystal(seed + 1000)


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), weights=st.integers(0, 3))
def test_predictions_of_random_weights_on_random_crystals_obey_the_bound(task, seed, weights):
    model = build_model(task, **TINY, seed=weights, output_scale=30.0).eval()
    assert model.bounded_output
    pred = model.predict([random_crystal(seed)])[0]
    assert operator_eigenvalues(pred, model.ttype).min() > model.ttype.lower_bound


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
def test_trained_bounded_models_obey_the_bound_and_the_exact_pattern_on_seven_systems(task, crystals):
    model = build_model(task, **TINY, seed=1, output_scale=20.0)
    names = list(crystals)
    batch = model.prepared_batch([model.graph(crystals[n]) for n in names[:4]])
    target = torch.as_tensor(np.stack([-5.0 * np.eye(3 ** (model.ttype.order // 2)).reshape(model.ttype.shape)] * 4),
                             dtype=torch.float32)  # pulls every prediction below the bound
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    model.train()
    for _ in range(5):
        opt.zero_grad()
        loss = (model(batch) - target).pow(2).mean()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
    model.eval()
    preds = model.predict([crystals[n] for n in names])
    for name, t in zip(names, preds):
        assert operator_eigenvalues(t, model.ttype).min() > model.ttype.lower_bound, name
        c = SymmetryConstraints.from_structure(crystals[name], model.ttype)
        assert np.all(t[c.zero_mask()] == 0.0), name
        assert all(t[b] == s * t[a] for a, b, s in c.equalities), name


def test_the_switch_and_files_saved_without_it():
    for task in ("dielectric", "elastic"):
        assert build_model(task, **TINY).config.physical_bounds
        assert not build_model(task, **TINY, physical_bounds=False).bounded_output
    assert not build_model("piezoelectric", **TINY).bounded_output and PIEZOELECTRIC.lower_bound is None
    old = ModelConfig.preset("paper", "elastic").to_dict()
    del old["physical_bounds"]
    assert ModelConfig(**old).physical_bounds is False  # a file saved before the setting predicts as before
    plain = build_model("dielectric", **TINY, physical_bounds=False, parts=False, output_scale=3.0).eval()
    graph = plain.prepared_batch([plain.graph(random_crystal(5))])
    with torch.no_grad():
        raw = plain.head(plain.crystal_features(graph))
        np.testing.assert_allclose(plain(graph).numpy(), (3.0 * raw).numpy(), rtol=1e-5, atol=1e-6)
