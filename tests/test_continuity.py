"""The smooth graph: its cutoff functions by definition, and a network output that moves by
O(delta) when positions move by delta, down to 1e-7 A, through edges entering and leaving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Structure

from gmtnet.graph import build_graph, envelope, smooth_step, soft_knn_radius
from gmtnet.graph.cutoff import RADIUS_WIDTH
from gmtnet.model.io import build_model
from gmtnet.symmetry import analyze_symmetry, refine_structure, symmetrize_structure
from gmtnet.testing import ideal_crystals

DEGENERATE = ("rocksalt_NaCl", "wurtzite_ZnO", "alpha_quartz")  # crystals with degenerate neighbour shells
TASKS = ("dielectric", "piezoelectric", "elastic")
# Largest allowed |T(x + dx) - T(x)|_F / (|dx| scale), per Angstrom, scale = |T(x)|_F: the
# networks here (untrained, float64) move by less than 10 per Angstrom wherever they are smooth; a
# k-NN graph that gains or loses an edge jumps by far more (test_the_knn_graph_jumps_where_an_edge_enters).
LIPSCHITZ = 50.0


def _moved(structure: Structure, direction: np.ndarray, t: float) -> Structure:
    return Structure(structure.lattice, structure.species, structure.cart_coords + t * direction,
                     coords_are_cartesian=True)


def _direction(structure: Structure, seed: int) -> np.ndarray:
    u = np.random.default_rng(seed).normal(size=(len(structure), 3))
    return u / np.linalg.norm(u)  # unit length over all coordinates: |dx| = t


@pytest.fixture(scope="module")
def networks():
    """{(graph, task): untrained float64 fast model on structures as given}."""
    return {(graph, task): build_model(task, preset="fast", graph=graph, dtype="float64", refine_structure=False,
                                       seed=3)
            for graph in ("knn", "smooth") for task in TASKS}


def _predict(model, structures) -> np.ndarray:
    return model.predict(structures, orbits=False)


def _scale(t: np.ndarray) -> float:
    return max(float(np.linalg.norm(t)), 1e-3)


# ---- the functions, by definition ------------------------------------------------------------

def test_smooth_step_is_a_c2_step_from_0_to_1():
    t = np.linspace(-1.5, 1.5, 30001)
    s = smooth_step(t)
    assert (s[t <= -1] == 0).all() and (s[t >= 1] == 1).all()
    assert (np.diff(s) >= 0).all()
    np.testing.assert_allclose(smooth_step(-t), 1 - s, rtol=0, atol=1e-14)
    h = t[1] - t[0]
    d1, d2 = np.gradient(s, h), np.gradient(np.gradient(s, h), h)
    joins = np.abs(np.abs(t) - 1) < 5 * h
    assert np.abs(d1[joins]).max() < 1e-6 and np.abs(d2[joins]).max() < 1e-2  # first, second derivatives vanish
    torch_s = smooth_step(torch.as_tensor(t)).numpy()
    np.testing.assert_array_equal(torch_s, s)


def test_envelope_is_one_inside_the_radius_and_zero_past_the_band():
    r = np.full(7, 3.0)
    d = np.array([0.5, 2.9, 3.0, 3.15, 3.3, 3.31, 9.0])
    e = envelope(d, r, band=0.1)
    assert e[0] == e[1] == e[2] == 1.0 and e[5] == e[6] == 0.0
    assert 0 <= e[4] < 1e-30  # (1 + band) r, to rounding
    assert e[3] == pytest.approx(0.5)
    torch_e = envelope(torch.as_tensor(d), torch.as_tensor(r), band=0.1).numpy()
    np.testing.assert_array_equal(torch_e, e)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 20), seed=st.integers(0, 10**6))
def test_soft_radius_is_the_kth_distance_when_its_neighbours_are_apart(k, seed):
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(2.2 * RADIUS_WIDTH, 1.0, size=k + 10)
    dist = 1.0 + np.cumsum(gaps)
    rng.shuffle(dist)
    r = soft_knn_radius(np.zeros(len(dist), dtype=int), dist, 1, k)
    assert r[0] == pytest.approx(np.sort(dist)[k - 1], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 20), seed=st.integers(0, 10**6), delta=st.floats(1e-9, 1e-2))
def test_soft_radius_moves_no_more_than_the_distances(k, seed, delta):
    rng = np.random.default_rng(seed)
    dist = np.round(rng.uniform(2.0, 2.6, size=k + 12), 2)  # many exact ties
    moved = dist + rng.uniform(-delta, delta, size=dist.shape)
    centre = np.zeros(len(dist), dtype=int)
    r0, r1 = soft_knn_radius(centre, dist, 1, k)[0], soft_knn_radius(centre, moved, 1, k)[0]
    assert abs(r1 - r0) <= delta + 1e-12
    assert np.sort(dist)[k - 1] - RADIUS_WIDTH <= r0 <= np.sort(dist)[k - 1] + RADIUS_WIDTH


def test_equivalent_atoms_get_equal_radii_and_keep_their_orbits(crystals):
    for name in DEGENERATE:
        s = symmetrize_structure(crystals[name])  # exact to rounding (the hand-built cells are to ~1e-10 A)
        g = build_graph(s, symmetry=analyze_symmetry(s), graph="smooth")
        assert g.orbit_rep is not None, name  # the neighbourhood check passed
        per_atom = np.zeros(len(s))
        per_atom[g.edge_dst] = g.edge_radius
        np.testing.assert_allclose(per_atom, per_atom[g.orbit_rep], rtol=1e-12, err_msg=name)


# ---- the network: O(delta) changes -----------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(name=st.sampled_from(DEGENERATE), task=st.sampled_from(TASKS), exponent=st.floats(-7, -3),
       seed=st.integers(0, 1000))
def test_smooth_network_moves_by_order_delta(networks, name, task, exponent, seed):
    s = ideal_crystals()[name]
    delta = 10.0 ** exponent
    u = _direction(s, seed)
    start = _moved(s, _direction(s, seed + 1), 1e-3)  # off the ideal point: symmetry broken at 1e-3 A
    t0, t1 = _predict(networks[("smooth", task)], [start, _moved(start, u, delta)])
    assert np.linalg.norm(t1 - t0) <= LIPSCHITZ * delta * _scale(t0)


def _edges(structure: Structure, graph: str) -> frozenset:
    """The graph's edges as a set of (centre, neighbour, image shift)."""
    g = build_graph(structure, graph=graph)
    return frozenset(zip(g.edge_dst.tolist(), g.edge_src.tolist(), map(tuple, g.edge_shift.tolist())))


def _crossing(structure: Structure, direction: np.ndarray, graph: str, length: float) -> float:
    """A t in (0, length) within 1e-12 A of a point where the graph's edge set changes along
    structure + t direction (bisection on "the edge set is the one at t = 0")."""
    lo, hi = 0.0, length
    first = _edges(_moved(structure, direction, lo), graph)
    assert _edges(_moved(structure, direction, hi), graph) != first, "no edge enters or leaves on the path"
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if _edges(_moved(structure, direction, mid), graph) == first:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# (crystal, path length in A, seed of the direction): paths on which edges enter or leave
SMOOTH_PATHS = [("rocksalt_NaCl", 1.0, 11), ("wurtzite_ZnO", 0.2, 12), ("alpha_quartz", 0.1, 13)]
KNN_PATHS = [("rocksalt_NaCl", 0.01, 11), ("wurtzite_ZnO", 0.1, 12), ("alpha_quartz", 0.1, 13)]


@pytest.mark.parametrize("name,length,seed", SMOOTH_PATHS)
def test_smooth_network_is_continuous_where_edges_enter_and_leave(networks, name, length, seed):
    s = ideal_crystals()[name]
    u = _direction(s, seed)
    t = _crossing(s, u, "smooth", length)
    for delta in (1e-7, 1e-5):
        pair = [_moved(s, u, t - delta / 2), _moved(s, u, t + delta / 2)]
        assert _edges(pair[0], "smooth") != _edges(pair[1], "smooth")
        for task in TASKS:
            t0, t1 = _predict(networks[("smooth", task)], pair)
            assert np.linalg.norm(t1 - t0) <= LIPSCHITZ * delta * _scale(t0), (name, task, delta)


@pytest.mark.parametrize("name,length,seed", KNN_PATHS)
def test_the_knn_graph_jumps_where_an_edge_enters(networks, name, length, seed):
    """The same construction on the paper's graph: a jump far above the bound (what the bound
    above rules out)."""
    s = ideal_crystals()[name]
    u = _direction(s, seed)
    t = _crossing(s, u, "knn", length)
    delta = 1e-7
    t0, t1 = _predict(networks[("knn", "elastic")], [_moved(s, u, t - delta / 2), _moved(s, u, t + delta / 2)])
    assert np.linalg.norm(t1 - t0) > 100 * LIPSCHITZ * delta * _scale(t0)


@pytest.mark.parametrize("backend", ["spglib", "moyopy"])
def test_refinement_moves_by_order_delta(crystals, backend):
    """Symmetrizing within symprec is continuous too: structures near one ideal crystal give
    symmetrized structures within O(delta) of each other (same frame, same atom order), from
    either backend's standard cell."""
    for name in DEGENERATE:
        s = crystals[name]
        start = _moved(s, _direction(s, 5), 2e-4)
        r0 = refine_structure(start, symmetry=analyze_symmetry(start, backend=backend))
        for delta in (1e-7, 1e-5):
            moved = _moved(start, _direction(s, 6), delta)
            r1 = refine_structure(moved, symmetry=analyze_symmetry(moved, backend=backend))
            assert np.abs(r1.cart_coords - r0.cart_coords).max() <= 2 * delta, name
            assert np.abs(r1.lattice.matrix - r0.lattice.matrix).max() <= 2 * delta, name
