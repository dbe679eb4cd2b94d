"""k-NN radius graph against a brute-force enumeration over a large image box, and its invariances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from gmtnet.graph import atom_features, build_graph, knn_radius_edges
from gmtnet.graph.neighbors import RADIUS_TOL
from gmtnet.symmetry import analyze_symmetry
from gmtnet.tensors import random_orthogonal


def brute_force_edges(lattice, positions, k, box=6):
    """All images with |n_a| <= box; the k-th smallest distance per atom; edges within it.

    Also says whether some distance lies within 1e-9 A of a cutoff (radius + tol): there the
    answer depends on rounding, so no implementation can be held to it."""
    shifts = np.array(list(itertools.product(range(-box, box + 1), repeat=3)))
    edges, ambiguous = set(), False
    for i, pi in enumerate(positions):
        vecs = positions[None, :, :] + (shifts @ lattice)[:, None, :] - pi  # (S, n, 3)
        dist = np.linalg.norm(vecs, axis=-1)
        flat = np.sort(dist[dist > 1e-8])
        radius = flat[k - 1]
        ambiguous |= bool(np.any(np.abs(dist - (radius + RADIUS_TOL)) < 1e-9))
        for s, j in zip(*np.nonzero((dist <= radius + RADIUS_TOL) & (dist > 1e-8))):
            edges.add((int(j), i, *map(int, shifts[s])))
    return edges, ambiguous


def as_set(src, dst, shift):
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(src, dst, shift)}


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.tuples(*[st.floats(2.0, 6.0)] * 3),
    angles=st.tuples(*[st.floats(60.0, 120.0)] * 3),
    n_atoms=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    k=st.sampled_from([1, 4, 16]),
)
@example(lengths=(2.0, 2.0, 2.000005), angles=(60.0, 60.0, 61.0), n_atoms=1, seed=0, k=1)  # tie kept
@example(lengths=(2.0, 2.0, 2.00002), angles=(60.0, 60.0, 61.0), n_atoms=1, seed=0, k=1)  # just past it
def test_matches_brute_force_on_skewed_and_small_cells(lengths, angles, n_atoms, seed, k):
    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError:
        return
    if lattice.volume < 0.3 * np.prod(lengths):  # nearly flat cells need a larger brute-force box
        return
    rng = np.random.default_rng(seed)
    positions = rng.random((n_atoms, 3)) @ lattice.matrix
    expected, ambiguous = brute_force_edges(lattice.matrix, positions, k)
    assume(not ambiguous)
    src, dst, vec, shift = knn_radius_edges(lattice.matrix, positions, k)
    assert as_set(src, dst, shift) == expected
    np.testing.assert_allclose(vec, positions[src] + shift @ lattice.matrix - positions[dst], atol=1e-12)
    assert np.bincount(dst, minlength=n_atoms).min() >= k


def test_one_atom_cubic_cell_counts_shells(crystals):
    # simple cubic: 6 first + 12 second neighbours = 18 >= 16, ties kept together
    src, dst, vec, _ = knn_radius_edges(np.eye(3) * 2.5, np.zeros((1, 3)), 16)
    assert len(src) == 18
    assert np.allclose(sorted(np.linalg.norm(vec, axis=1))[-1], 2.5 * np.sqrt(2))


def same_vectors(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> bool:
    """Multiset equality of two (m, 3) arrays up to ``atol``: every vector occurs equally often
    (within atol) in both."""
    from scipy.spatial import cKDTree

    if a.shape != b.shape:
        return False
    ta, tb = cKDTree(a), cKDTree(b)
    for points in (a, b):
        in_a = np.array([len(x) for x in ta.query_ball_point(points, atol)])
        in_b = np.array([len(x) for x in tb.query_ball_point(points, atol)])
        if not np.array_equal(in_a, in_b):
            return False
    return True


def same_graph(g1, g2, copies: int = 1) -> bool:
    """Same edges up to atom labels: per (centre species, neighbour species), the same vectors."""
    pairs = {(int(g1.atomic_numbers[d]), int(g1.atomic_numbers[s])) for s, d in zip(g1.edge_src, g1.edge_dst)}
    for zc, zn in pairs:
        def vecs(g):
            m = (g.atomic_numbers[g.edge_dst] == zc) & (g.atomic_numbers[g.edge_src] == zn)
            return g.edge_vec[m]
        v1 = np.concatenate([vecs(g1)] * copies)
        if not same_vectors(v1, vecs(g2)):
            return False
    return True


def test_translation_permutation_and_rotation_invariance(crystals, rng):
    s = crystals["alpha_quartz"]
    g = build_graph(s)
    shifted = Structure(s.lattice, s.species, s.cart_coords + np.array([0.3, -1.7, 2.2]), coords_are_cartesian=True)
    assert same_graph(g, build_graph(shifted))
    perm = rng.permutation(len(s))
    permuted = Structure(s.lattice, [s.species[p] for p in perm], s.frac_coords[perm])
    assert same_graph(g, build_graph(permuted))
    q = random_orthogonal(rng, improper=True)
    rotated = Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords)
    gr = build_graph(rotated)
    np.testing.assert_allclose(gr.edge_vec, g.edge_vec @ q.T, atol=1e-9)
    assert (gr.edge_src == g.edge_src).all() and (gr.edge_dst == g.edge_dst).all()


def test_supercell_gives_the_same_neighbourhoods(crystals):
    s = crystals["wurtzite_ZnO"]
    g, g2 = build_graph(s), build_graph(s * (2, 1, 1))
    assert g2.n_edges == 2 * g.n_edges
    assert same_graph(g, g2, copies=2)


def test_symmetry_equivalent_atoms_have_equivalent_neighbourhoods(crystals):
    """Every point-group operation maps the multiset of edge vectors onto itself (ideal crystal)."""
    for name in ("alpha_quartz", "wurtzite_ZnO", "rutile_TiO2", "monoclinic_2"):
        g = build_graph(crystals[name], symmetry=analyze_symmetry(crystals[name]))
        for r in g.rotations:
            assert same_vectors(g.edge_vec @ r.T, g.edge_vec), name


def test_atom_features():
    f = atom_features([1, 8, 100])
    assert f.shape == (3, 92) and f.dtype == np.float32 and np.isfinite(f).all()
    assert not np.allclose(f[0], f[1])
    with pytest.raises(ValueError, match="no CGCNN atom features"):
        atom_features([0])
    with pytest.raises(ValueError, match="no CGCNN atom features"):
        atom_features([118])
