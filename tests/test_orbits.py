"""Evaluation at one atom per orbit against its definition: the orbit map carries neighbourhoods
onto each other, the expansion rotates features by e3nn's Wigner matrices, and the network's
predictions equal the atom-by-atom evaluation on ideal crystals of all seven crystal systems."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest
import spglib
import torch
from e3nn import o3
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from gmtnet.graph import build_graph
from gmtnet.model import build_model
from gmtnet.model.batch import collate
from gmtnet.symmetry import PointGroupNeeds, analyze_symmetry, atom_orbits, point_group_data
from gmtnet.tensors import TENSOR_TYPES, random_orthogonal
from gmtnet.tensors.irreps import float64_default

from gmtnet.testing import ideal_crystals

SMALL = dict(node_dim=32, edge_dim=32, rbf_bins=64, mul_scalars=8, mul_vectors=4, radial_hidden=16)
BARE = dict(symmetrize_features=False, project_output=False, snap_output=False, refine_structure=False)
CRYSTALS = ideal_crystals()


def with_supercell_and_frame():
    """The ideal crystals, a supercell, and one crystal in a rotated and reflected frame."""
    out = dict(CRYSTALS)
    out["rutile_TiO2 x (2,1,2)"] = CRYSTALS["rutile_TiO2"] * (2, 1, 2)
    q = random_orthogonal(np.random.default_rng(2), improper=True)
    s = CRYSTALS["wurtzite_ZnO"]
    out["wurtzite_ZnO reflected"] = Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords)
    return out


def graph_of(structure):
    return build_graph(structure, symmetry=analyze_symmetry(structure))


def prepared(graphs, **needs):
    """The graphs with their point-group records for ``needs`` (PointGroupNeeds fields)."""
    for g, record in zip(graphs, point_group_data(graphs, PointGroupNeeds(**needs))):
        g.point_group = record
    return graphs


@pytest.mark.parametrize("name", list(with_supercell_and_frame()))
def test_orbit_map_carries_each_neighbourhood_onto_the_atoms(name):
    s = with_supercell_and_frame()[name]
    g = graph_of(s)
    assert g.orbit_rep is not None
    cell = (s.lattice.matrix, s.frac_coords, s.atomic_numbers)
    assert len(set(g.orbit_rep)) == len(set(spglib.get_symmetry_dataset(cell, symprec=1e-3).equivalent_atoms))
    for j in range(g.n_atoms):
        r, rot = g.orbit_rep[j], g.rotations[g.orbit_rotation[j]]
        if r == j:
            assert np.allclose(rot, np.eye(3), rtol=0, atol=1e-14)
        mine = np.sort(np.round(g.edge_vec[g.edge_dst == j], 6), axis=0)
        carried = np.sort(np.round(g.edge_vec[g.edge_dst == r] @ rot.T, 6), axis=0)
        assert mine.shape == carried.shape
        assert np.abs(mine - carried).max() < 1e-5, (name, j)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), improper=st.booleans())
def test_expand_applies_each_atoms_wigner_matrix(seed, improper):
    """OrbitBatch.expand against e3nn's D_from_matrix, for every irrep of both parities up to l = 3."""
    rng = np.random.default_rng(seed)
    s = CRYSTALS["zincblende_GaAs"] * (1, 1, 2)
    g = graph_of(s)
    q = random_orthogonal(rng, improper=improper)  # stand-in orbit rotations: any group member works
    g.rotations = np.stack([np.eye(3), q])
    g.orbit_rep = np.zeros(g.n_atoms, dtype=np.int64)
    g.orbit_rotation = np.array([0] + [1] * (g.n_atoms - 1), dtype=np.int64)
    g.site_rotations = g.edge_multiplicity = None  # a hand-made map: no site groups
    batch = collate(prepared([g], orbit_lmax=3), dtype=torch.float64, orbit_lmax=3)
    irreps = o3.Irreps("2x0e+0o+1o+2x1e+2e+2o+3o+3e")
    x = torch.as_tensor(rng.standard_normal((1, irreps.dim)))
    out = batch.orbits.expand(x, irreps)
    assert torch.allclose(out[0], x[0], rtol=0, atol=1e-14)
    with float64_default():  # e3nn's angles in float64
        expected = irreps.D_from_matrix(torch.as_tensor(q)) @ x[0]
    assert torch.allclose(out[1:], expected.expand(g.n_atoms - 1, -1), atol=1e-12)


@pytest.mark.parametrize("task", list(TENSOR_TYPES))
@pytest.mark.parametrize("enforced", [True, False], ids=["enforced", "bare"])
@pytest.mark.parametrize("graph", ["knn", "smooth"])
def test_orbit_evaluation_equals_atom_by_atom(task, enforced, graph):
    from gmtnet.symmetry import symmetrize_structure

    model = build_model(task, **SMALL, **({} if enforced else BARE), graph=graph, dtype="float64").eval()
    # symmetric to float precision (the fixtures' positions are to ~1e-10 A, which the two orders
    # of summation turn into ~1e-9 relative differences)
    structures = [symmetrize_structure(s) for s in with_supercell_and_frame().values()]
    graphs = [model.graph(s) for s in structures]
    full = model.predict_graphs(graphs, orbits=False)
    by_orbit = model.predict_graphs(graphs, orbits=True)
    scale = np.abs(full).max()
    assert scale > 0
    assert np.abs(by_orbit - full).max() < 1e-10 * scale
    batch = model.collate(graphs, orbits=True)
    assert len(batch.orbits.rep_nodes) < sum(g.n_atoms for g in graphs)  # it did skip atoms
    into_reps = sum(int(np.isin(g.edge_dst, np.flatnonzero(g.orbit_rep == np.arange(g.n_atoms))).sum())
                    for g in graphs)
    assert len(batch.edge_src) < 0.6 * into_reps  # and edges of the same class (253 of 441)


@pytest.mark.parametrize("name", list(with_supercell_and_frame()))
def test_site_groups_and_edge_classes(name):
    """Each representative's site group has the order orbit-stabilizer gives (spglib's operations
    over the orbit's size), each of its rotations permutes the representative's edges, and the
    kept edges' multiplicities are the sizes of their classes (orbits of edges under the group)."""
    s = with_supercell_and_frame()[name]
    g = graph_of(s)
    n_ops = len(spglib.get_symmetry_dataset((s.lattice.matrix, s.frac_coords, s.atomic_numbers), symprec=1e-3).rotations)
    for r in np.flatnonzero(g.orbit_rep == np.arange(g.n_atoms)):
        site = g.rotations[g.site_rotations[r]]
        assert len(site) * np.sum(g.orbit_rep == r) == n_ops, (name, r)
        edges = np.flatnonzero(g.edge_dst == r)
        v, mult = g.edge_vec[edges], g.edge_multiplicity[edges]
        assert mult.sum() == len(edges) and mult[0] > 0
        images = np.einsum("sij,ej->sei", site, v)  # [s, e, 3]
        covered = np.zeros(len(edges), dtype=bool)
        for e in np.flatnonzero(mult):
            members = np.unique(np.abs(images[:, e, None, :] - v[None]).max(axis=2).argmin(axis=1))
            assert len(members) == mult[e] and not covered[members].any()
            covered[members] = True
        assert covered.all()
        for image in images:  # every site rotation maps the edge set onto itself
            assert np.abs(np.sort(np.round(image, 6), axis=0) - np.sort(np.round(v, 6), axis=0)).max() < 1e-5
    assert np.all(g.edge_multiplicity[g.orbit_rep[g.edge_dst] != g.edge_dst] == 1)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), name=st.sampled_from(["rocksalt_NaCl", "wurtzite_ZnO", "rutile_TiO2",
                                                                  "alpha_quartz", "orthorhombic_mm2"]))
def test_site_projectors_average_e3nn_wigner_matrices(seed, name):
    """OrbitBatch.project_sites applies, per representative, the mean over its site group of e3nn's
    D_from_matrix, a projector (P P = P), for irreps of both parities up to l = 3."""
    s = CRYSTALS[name]
    g = graph_of(s)
    batch = collate(prepared([g], orbit_lmax=3), dtype=torch.float64, orbit_lmax=3)
    irreps = o3.Irreps("2x0e+2x0o+1o+2x1e+2e+2o+3o+3e")
    reps = np.flatnonzero(g.orbit_rep == np.arange(g.n_atoms))
    x = torch.as_tensor(np.random.default_rng(seed).standard_normal((len(reps), irreps.dim)))
    out = batch.orbits.project_sites(x, irreps)
    for k, r in enumerate(reps):
        with float64_default():
            p = torch.stack([irreps.D_from_matrix(torch.as_tensor(q)) for q in g.rotations[g.site_rotations[r]]]).mean(0)
        assert torch.allclose(out[k], p @ x[k], atol=1e-12)
    assert torch.allclose(batch.orbits.project_sites(out, irreps), out, atol=1e-12)


def test_a_site_group_failing_the_check_falls_back_to_the_identity():
    """At a tolerance below a displacement, the displaced atom's representative keeps only the
    identity (every edge its own class) while the others keep their site groups."""
    from gmtnet.symmetry.orbits import site_edge_classes

    s = CRYSTALS["rutile_TiO2"].copy()
    s.translate_sites([1], [2e-4, 0, 0], frac_coords=False)
    g = graph_of(s)
    assert g.site_rotations[0].sum() > 1
    site = g.site_rotations.copy()
    identity = int(np.flatnonzero(np.all(np.isclose(g.rotations, np.eye(3)), axis=(1, 2)))[0])
    mult = site_edge_classes(g.orbit_rep, site, g.rotations, g.edge_src, g.edge_dst, g.edge_vec, 1e-6, identity)
    failed = [r for r in np.flatnonzero(g.orbit_rep == np.arange(g.n_atoms)) if site[r].sum() == 1]
    assert failed and all(site[r, identity] for r in failed)
    assert np.all(mult[np.isin(g.edge_dst, failed)] == 1)
    kept = [r for r in np.flatnonzero(g.orbit_rep == np.arange(g.n_atoms)) if r not in failed]
    assert all(np.array_equal(site[r], g.site_rotations[r]) for r in kept)


def test_a_graph_failing_the_check_is_evaluated_atom_by_atom():
    """A displacement within symprec keeps the space group but, at a tight tolerance, breaks the map;
    such a graph has no orbit map and mixes with mapped graphs in one orbit batch."""
    s = CRYSTALS["rutile_TiO2"].copy()
    s.translate_sites([1], [2e-4, 0, 0], frac_coords=False)
    symmetry = analyze_symmetry(s)
    assert symmetry.spacegroup_number == 136
    model = build_model("dielectric", **SMALL, **BARE, dtype="float64").eval()
    graph = build_graph(s, symmetry=symmetry, **model.graph_options())
    assert graph.orbit_rep is not None  # within the default tolerance (4 x symprec)
    assert atom_orbits(s.frac_coords, s.lattice.matrix, symmetry, graph.edge_src, graph.edge_dst,
                       graph.edge_vec, tol=1e-6) is None
    graph.orbit_rep = graph.orbit_rotation = None
    quartz = model.graph(CRYSTALS["alpha_quartz"])
    graphs = [graph, quartz]
    model.prepare_graphs(graphs)
    batch = model.collate(graphs, orbits=True)
    assert len(set(quartz.orbit_rep)) == 2  # Si and O
    assert len(batch.orbits.rep_nodes) == graph.n_atoms + 2  # every atom of the first, one per orbit of quartz
    assert np.allclose(model.predict_graphs(graphs, orbits=True), model.predict_graphs(graphs, orbits=False),
                       rtol=0, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(2, 12))
def test_weighted_batch_norm_equals_repeated_rows(seed, rows):
    """Rows of integer weight w count as w copies: outputs and running statistics as BatchNorm1d's."""
    from gmtnet.model.norm import WeightedBatchNorm1d

    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.standard_normal((rows, 5)) * 3 + 1)
    w = torch.as_tensor(rng.integers(1, 5, rows)).double()
    weighted, plain = WeightedBatchNorm1d(5).double(), torch.nn.BatchNorm1d(5).double()
    with torch.no_grad():
        weighted.weight.copy_(torch.as_tensor(rng.standard_normal(5)))
        plain.weight.copy_(weighted.weight)
    out = weighted(x, w)
    repeated = plain(x.repeat_interleave(w.long(), dim=0))
    assert torch.allclose(out.repeat_interleave(w.long(), dim=0), repeated, atol=1e-12)
    assert torch.allclose(weighted.running_mean, plain.running_mean, atol=1e-12)
    assert torch.allclose(weighted.running_var, plain.running_var, atol=1e-12)
    weighted.eval(), plain.eval()
    assert torch.allclose(weighted(x), plain(x), atol=1e-12)


@pytest.mark.parametrize("task", list(TENSOR_TYPES))
@pytest.mark.parametrize("graph", ["knn", "smooth"])
def test_orbit_training_step_equals_atom_by_atom(task, graph):
    """In training mode (batch statistics) an orbit batch gives the same outputs, gradients and
    running statistics as the batch of every atom (float64, crystals symmetric to float precision)."""
    from gmtnet.symmetry import symmetrize_structure

    structures = [symmetrize_structure(s) for s in with_supercell_and_frame().values()]
    results = []
    for orbits in (False, True):
        model = build_model(task, **SMALL, graph=graph, dtype="float64").train()
        graphs = [model.graph(s) for s in structures]
        model.prepare_graphs(graphs)
        batch = model.collate(graphs, orbits=orbits)
        out = model(batch)
        target = torch.as_tensor(np.random.default_rng(0).standard_normal(out.shape))
        ((out - target) ** 2).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        stats = {n: b.clone() for n, b in model.named_buffers() if "running" in n}
        results.append((out.detach(), grads, stats))
    (out_a, grads_a, stats_a), (out_b, grads_b, stats_b) = results
    assert torch.allclose(out_b, out_a, rtol=0, atol=1e-10 * out_a.abs().max())
    assert grads_a.keys() == grads_b.keys() and stats_a.keys() == stats_b.keys() and stats_a
    for name in grads_a:
        scale = max(grads_a[name].abs().max().item(), 1e-12)
        assert (grads_b[name] - grads_a[name]).abs().max().item() < 1e-8 * scale, name
    for name in stats_a:
        assert torch.allclose(stats_b[name], stats_a[name], rtol=1e-10, atol=1e-12), name


def _assert_same_arrays(a, b):
    """Equal (to 1e-14) nested records: dataclasses, mappings, tuples, arrays."""
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name != "constraints":
                _assert_same_arrays(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, Mapping):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_arrays(a[k], b[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_arrays(x, y)
    elif a is None:
        assert b is None
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
def test_preparing_many_graphs_at_once_equals_one_at_a_time(task):
    """model.prepare_graphs (the batched point-group records training computes) against
    prepare_graph graph by graph: the same projectors, patterns, averaged Wigner matrices and
    orbit data."""
    model = build_model(task, **SMALL, dtype="float64")
    names = list(CRYSTALS)
    together = [model.graph(CRYSTALS[n]) for n in names]
    alone = [model.graph(CRYSTALS[n]) for n in names]
    model.prepare_graphs(together)
    for g in alone:
        model.prepare_graph(g)
    for a, b in zip(together, alone):
        assert a.point_group.orbits and a.point_group.averaged_wigner
        assert a.point_group.constraints.keys() == b.point_group.constraints.keys()
        ca, cb = model.constraints(a), model.constraints(b)
        np.testing.assert_allclose(ca.projector, cb.projector, rtol=0, atol=1e-14)
        assert ca.describe() == cb.describe()
        _assert_same_arrays(a.point_group, b.point_group)


@pytest.mark.parametrize("task", ["dielectric", "piezoelectric"])
def test_a_record_extended_part_by_part_equals_one_made_at_once(task):
    """Records are immutable: asking for the orbit data later gives a new record (the old one
    unchanged) equal to the record computed with everything at once, and the same batch, here
    with a graph that has no orbit map mixed in."""
    model = build_model(task, **SMALL, dtype="float64")
    names = list(CRYSTALS)

    def graphs():
        out = [model.graph(CRYSTALS[n]) for n in names]
        out[1].orbit_rep = out[1].orbit_rotation = None  # evaluated atom by atom
        return out

    at_once, in_steps = graphs(), graphs()
    model.prepare_graphs(at_once)
    model.prepare_graphs(in_steps, orbits=False)
    first = [g.point_group for g in in_steps]
    assert not any(r.orbits for r in first)
    model.prepare_graphs(in_steps)
    assert not any(r.orbits for r in first) and all(g.point_group.orbits for g in in_steps)
    for a, b in zip(at_once, in_steps):
        _assert_same_arrays(a.point_group, b.point_group)
    model.prepare_graphs(in_steps)
    assert all(g.point_group.orbits for g in in_steps)
    a, b = model.collate(at_once, orbits=True), model.collate(in_steps, orbits=True)
    for name in ("node_features", "edge_src", "edge_dst", "edge_vec", "node_graph", "output_projector"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("rep_nodes", "node_rep", "parity_sign", "rep_weight", "edge_weight"):
        assert torch.equal(getattr(a.orbits, name), getattr(b.orbits, name)), name


def test_a_record_names_the_space_group_of_every_crystal_system():
    model = build_model("elastic", **SMALL, dtype="float64")
    graphs = [model.graph(s) for s in CRYSTALS.values()]
    model.prepare_graphs(graphs, orbits=False)
    systems = set()
    for s, g in zip(CRYSTALS.values(), graphs):
        symmetry = analyze_symmetry(s)
        assert g.point_group.spacegroup_number == symmetry.spacegroup_number
        assert g.point_group.crystal_system == symmetry.crystal_system
        np.testing.assert_array_equal(g.point_group.rotations, symmetry.rotations)
        systems.add(symmetry.crystal_system)
    assert len(systems) == 7


def test_a_point_group_record_cannot_be_changed():
    model = build_model("elastic", **SMALL, dtype="float64")
    graph = model.graph(CRYSTALS["rutile_TiO2"])
    model.prepare_graph(graph)
    record = graph.point_group
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.rotations = None
    with pytest.raises(TypeError):
        record.constraints["elastic"] = None
    with pytest.raises(ValueError, match="read-only"):
        record.orbits[model.orbit_lmax].edge_vec[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        record.rotation_wigner[1][0, 0, 0] = 1.0


def test_collate_only_concatenates_and_names_what_a_graph_lacks():
    """An unprepared graph is refused by name, never prepared behind the caller's back."""
    model = build_model("piezoelectric", **SMALL, dtype="float64")
    graphs = [model.graph(CRYSTALS[n]) for n in ("rutile_TiO2", "alpha_quartz")]
    with pytest.raises(ValueError, match="graph 0 of the batch lacks the piezoelectric projector, the averaged Wigner"):
        model.collate(graphs)
    model.prepare_graphs(graphs, orbits=False)
    model.collate(graphs)
    with pytest.raises(ValueError, match="lacks the orbit data up to l = "):
        model.collate(graphs, orbits=True)
    assert all(not g.point_group.orbits for g in graphs)
