"""Ensembles: the mean of their members, still exactly symmetric and O(3)-equivariant, saved
and loaded as one file, usable wherever a model is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmtnet.errors import GmtnetError
from gmtnet.model import load_model, save_model
from gmtnet.model.ensemble import EnsembleModel
from gmtnet.model.io import combine_models
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import TENSOR_TYPES, get_tensor_type, random_orthogonal, rotate_tensor
from test_model import IDEAL, rel_err, rotated, small_model, train_a_few_steps, triclinic_crystal

TASKS = list(TENSOR_TYPES)


def two_members(task, dtype=torch.float64, **kw):
    """Two differently seeded and trained small models (one GMTNet 'fast', one 'paper')."""
    crystals = [triclinic_crystal(0), triclinic_crystal(1)]
    a = train_a_few_steps(small_model(task, dtype, seed=1, **kw), crystals)
    b = train_a_few_steps(small_model(task, dtype, seed=2, inner_lmax=2, message_mul=4, **kw), crystals)
    return a, b


@pytest.mark.parametrize("task", TASKS)
def test_ensemble_is_the_snapped_mean_of_its_members(task, crystals):
    a, b = two_members(task)
    ens = EnsembleModel([a, b]).eval()
    structures = [crystals[n] for n in IDEAL]
    graphs = [ens.graph(s) for s in structures]
    mean = (a.predict_graphs(graphs, snap=False) + b.predict_graphs(graphs, snap=False)) / 2
    np.testing.assert_allclose(ens.predict_graphs(graphs, snap=False), mean, rtol=0, atol=0)
    snapped = ens.predict(structures)
    ttype = get_tensor_type(task)
    for name, s, t, m in zip(IDEAL, structures, snapped, mean):
        c = SymmetryConstraints.from_structure(s, ttype)
        assert np.all(t[c.zero_mask()] == 0.0), name
        for i, j, sign in c.equalities:
            assert t[j] == sign * t[i], name
        np.testing.assert_allclose(t, c.project(m), atol=1e-12)
    # the members differ, so the test would notice an ensemble that returned one of them
    assert rel_err(a.predict_graphs(graphs), b.predict_graphs(graphs)) > 1e-3


@pytest.mark.parametrize("task", TASKS)
def test_ensemble_is_o3_equivariant(task):
    ens = EnsembleModel(list(two_members(task, symmetrize_features=False, project_output=False,
                                         snap_output=False))).eval()
    crystal = triclinic_crystal(3)
    base = ens.predict([crystal])[0]
    assert np.linalg.norm(base) > 0
    rng = np.random.default_rng(11)
    for improper in (False, True):
        q = random_orthogonal(rng, improper=improper)
        pred = ens.predict([rotated(crystal, q)])[0]
        assert rel_err(pred, rotate_tensor(base, q, get_tensor_type(task))) < 1e-9


def test_ensemble_file_round_trip_and_combine(tmp_path, crystals):
    a, b = two_members("piezoelectric", dtype=torch.float32)
    pa, pb = save_model(a, tmp_path / "a.pt"), save_model(b, tmp_path / "b.pt")
    path = combine_models([pa, pb], tmp_path / "ens.pt", note="two")
    loaded = load_model(path)
    assert isinstance(loaded, EnsembleModel) and len(loaded.members) == 2
    assert loaded.metadata == {"note": "two"}
    assert [m.metadata["source_file"] for m in loaded.members] == [str(pa), str(pb)]
    s = [crystals["alpha_quartz"], crystals["monoclinic_2"]]
    np.testing.assert_array_equal(loaded.predict(s), EnsembleModel([a, b]).eval().predict(s))


def test_members_of_one_structure_are_built_once_and_loaded_apart(tmp_path, crystals):
    """Members that differ only in seed and output scale share one construction (copied): each
    keeps its own hyperparameters and weights, and the ensemble predicts as the members built
    one by one."""
    crystals_ = [triclinic_crystal(0), triclinic_crystal(1)]
    members = [train_a_few_steps(small_model("dielectric", torch.float32, seed=s, output_scale=x), crystals_)
               for s, x in ((1, 2.0), (2, 3.0))] + [two_members("dielectric", dtype=torch.float32)[1]]
    path = save_model(EnsembleModel(members), tmp_path / "ens.pt")
    loaded = load_model(path)
    for mine, original in zip(loaded.members, members):
        assert mine.config == original.config
        for (name, x), (_, y) in zip(mine.state_dict().items(), original.state_dict().items()):
            assert torch.equal(x, y), name
    first, second = loaded.members[0], loaded.members[1]
    assert not any(x.data_ptr() == y.data_ptr() for x, y in zip(first.parameters(), second.parameters()))
    s = [crystals["alpha_quartz"], crystals["rutile_TiO2"]]
    np.testing.assert_array_equal(loaded.predict(s), EnsembleModel(members).eval().predict(s))


def test_ensemble_refuses_members_with_different_tasks_or_graphs():
    with pytest.raises(GmtnetError, match="differ in task"):
        EnsembleModel([small_model("dielectric"), small_model("elastic")])
    with pytest.raises(GmtnetError, match="differ in k"):
        EnsembleModel([small_model("dielectric"), small_model("dielectric", k=8)])
    with pytest.raises(GmtnetError, match="at least one"):
        EnsembleModel([])


def test_predictor_runs_an_ensemble(crystals):
    from gmtnet.prediction import Predictor

    a, b = two_members("dielectric", dtype=torch.float32)
    ens = EnsembleModel([a, b]).eval()
    predictor = Predictor("dielectric", models={"dielectric": ens})
    result = predictor.predict_one(crystals["rutile_TiO2"], "rutile")
    assert result.error is None
    np.testing.assert_array_equal(result.tensors["dielectric"], ens.predict([crystals["rutile_TiO2"]])[0])
