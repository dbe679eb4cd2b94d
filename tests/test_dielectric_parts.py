"""The dielectric tensor as electronic + ionic parts: the MP-DFPT source and the matminer parts,
models that predict the parts each within its bound, their training, error bounds, outputs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gmtnet.data import load_dataset
from gmtnet.data.records import output_labels
from gmtnet.data.sources import mp_dfpt
from gmtnet.data.splits import mp_dfpt_splits
from gmtnet.errors import GmtnetError
from gmtnet.model import build_model, load_model, save_model
from gmtnet.model.ensemble import EnsembleModel
from gmtnet.model.error_bound import model_error_bounds
from gmtnet.symmetry import SymmetryConstraints, analyze_symmetry
from gmtnet.tensors import (DIELECTRIC, DIELECTRIC_ELECTRONIC, DIELECTRIC_IONIC, PART_TYPES, get_tensor_type,
                            parent_type, part_types, random_orthogonal, rotate_tensor)
from gmtnet.tensors.bounds import operator_eigenvalues, violation_name, within_bound
from gmtnet.testing import assert_exactly_symmetric, ideal_crystals, relative_error
from gmtnet.training.calibration import attach_error_bounds, calibrate_model
from gmtnet.training.losses import outputs_loss, shard_loss
from test_bounds import random_crystal
from test_model import rotated, triclinic_crystal

TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)
PARTS = ("dielectric_electronic", "dielectric_ionic")


def parts_model(seed=0, dtype="float64", **kw):
    return build_model("dielectric", preset="fast", **{**TINY, "seed": seed, "dtype": dtype, "part_scales": [3.0, 8.0],
                                                       **kw}).eval()


@pytest.fixture(scope="module")
def dfpt(tmp_path_factory):
    """The whole MP-DFPT benchmark, curated once (about 15 s), cached in a temporary folder."""
    root = tmp_path_factory.mktemp("data")
    return root, load_dataset("dielectric", source="mp-dfpt", root=root)


# ---- tensor types -------------------------------------------------------------------------------
def test_parts_share_the_dielectric_form_and_have_their_own_bounds():
    assert part_types("dielectric") == (DIELECTRIC_ELECTRONIC, DIELECTRIC_IONIC) and set(PART_TYPES) == set(PARTS)
    assert part_types("elastic") == () and part_types("piezoelectric") == ()
    for name in PARTS:
        ptype = get_tensor_type(name)
        assert DIELECTRIC.same_form(ptype) and parent_type(name) is DIELECTRIC and ptype.shape == (3, 3)
    assert parent_type("elastic").name == "elastic"
    assert DIELECTRIC_ELECTRONIC.lower_bound == 1.0 and DIELECTRIC_IONIC.lower_bound == 0.0
    # the ionic bound is not strict: a crystal without polar phonons has exactly zero
    assert within_bound(np.zeros((3, 3)), DIELECTRIC_IONIC) and not within_bound(np.zeros((3, 3)), DIELECTRIC)
    assert not within_bound(np.diag([1.0, 1.0, -1e-9]), DIELECTRIC_IONIC)
    assert not within_bound(np.eye(3), DIELECTRIC_ELECTRONIC) and within_bound(1.01 * np.eye(3), DIELECTRIC_ELECTRONIC)
    assert violation_name(DIELECTRIC_IONIC) == "eigenvalue < 0" and violation_name(DIELECTRIC) == "eigenvalue <= 1"
    assert violation_name(get_tensor_type("elastic")) == "not positive definite"


# ---- data ---------------------------------------------------------------------------------------
def test_mp_dfpt_reproduces_the_published_split_and_labels(dfpt):
    _, data = dfpt
    assert data.report.n_input == data.report.n_kept == 1783 and not data.report.removed
    for split, ids in mp_dfpt_splits().items():
        assert sorted(r.material_id for r in data.split(split)) == sorted(ids), split
    assert [len(data.split(s)) for s in ("train", "val", "test")] == [1426, 178, 179]
    arrays = mp_dfpt.read_archive()
    row = {str(i): k for k, i in enumerate(arrays["ids"])}
    for r in data[::40]:
        sym = analyze_symmetry(r.structure, 1e-3)
        c = SymmetryConstraints.from_rotations(sym.rotations, DIELECTRIC)
        for name, key in mp_dfpt.PART_ARRAYS.items():
            published = arrays[key][row[r.material_id]].reshape(3, 3)
            assert np.abs(r.parts[name] - c.project(published)).max() <= 1e-12 * np.abs(published).max()
            assert np.all(r.parts[name][c.zero_mask()] == 0.0)
            assert all(r.parts[name][b] == s * r.parts[name][a] for a, b, s in c.equalities)
        assert np.array_equal(r.tensor, r.parts[PARTS[0]] + r.parts[PARTS[1]])  # the total is their sum, exactly
        assert operator_eigenvalues(r.parts[PARTS[0]], DIELECTRIC_ELECTRONIC).min() >= 1 - 1e-3
        assert operator_eigenvalues(r.parts[PARTS[1]], DIELECTRIC_IONIC).min() >= -1e-3
    assert max(np.abs(r.tensor).max() for r in data) < mp_dfpt.MAX_ABS


def test_the_screened_high_k_crystals_are_their_own_split(dfpt):
    root, data = dfpt
    screened = load_dataset("dielectric", source="mp-dfpt", split="screened", root=root)
    assert len(screened) == 35 and {r.split for r in screened} == {"screened"}
    assert min(np.abs(r.tensor).max() for r in screened) >= mp_dfpt.MAX_ABS
    assert not {r.material_id for r in screened} & {r.material_id for r in data}
    with pytest.raises(GmtnetError, match="mp-dfpt"):
        load_dataset("dielectric", source="mp", split="screened", root=root)


def test_mp_dfpt_refuses_a_changed_archive_and_other_tasks(tmp_path, monkeypatch):
    folder = tmp_path / "archives"
    folder.mkdir()
    blob = (mp_dfpt.ARCHIVE_DIR / mp_dfpt.ARCHIVES["benchmark"].file).read_bytes()
    (folder / mp_dfpt.ARCHIVES["benchmark"].file).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    monkeypatch.setattr(mp_dfpt, "ARCHIVE_DIR", folder)
    with pytest.raises(GmtnetError, match="sha256"):
        load_dataset("dielectric", source="mp-dfpt", root=tmp_path)
    assert hashlib.sha256(blob).hexdigest() == mp_dfpt.ARCHIVES["benchmark"].sha256
    with pytest.raises(GmtnetError, match="dielectric tensors"):
        load_dataset("elastic", source="mp-dfpt", root=tmp_path)


def test_a_union_of_sources_keeps_each_split_and_report(mp_root, dfpt):
    _, data = dfpt
    mp = load_dataset("dielectric", root=mp_root)
    both = load_dataset("dielectric", source="mp+mp-dfpt", root=mp_root)
    assert both.source == "mp+mp-dfpt" and len(both) == len(mp) + len(data)
    assert [r.material_id for r in both] == [r.material_id for r in mp] + [r.material_id for r in data]
    assert both.report.n_input == mp.report.n_input + data.report.n_input
    assert both.report.removed == mp.report.removed and len(both.report.warnings) == len(mp.report.warnings)
    assert len(load_dataset("dielectric", source="mp+mp-dfpt", split="val", root=mp_root)) == \
        len(mp.split("val")) + len(data.split("val"))
    with pytest.raises(GmtnetError, match="twice"):
        load_dataset("dielectric", source="mp+mp", root=mp_root)


def test_matminer_records_carry_parts_that_add_up_to_the_benchmark_label(mp_root):
    data = load_dataset("dielectric", root=mp_root)
    with_parts = [r for r in data if r.parts is not None]
    assert with_parts and len(with_parts) == len(data) - len(data.report.warnings)
    for r in with_parts:  # ionic = total - electronic: their sum is the total to rounding
        np.testing.assert_allclose(r.parts[PARTS[0]] + r.parts[PARTS[1]], r.tensor, rtol=0,
                                   atol=1e-14 * np.abs(r.tensor).max())
    labels, known = output_labels(data, ("dielectric", *PARTS))
    assert labels.shape == (len(data), 3, 3, 3) and known[:, 0].all() and known[:, 1].sum() == len(with_parts)
    again = type(data[0]).from_dict(json.loads(json.dumps(with_parts[0].to_dict())))
    assert all(np.array_equal(again.parts[k], with_parts[0].parts[k]) for k in PARTS)


# ---- models -------------------------------------------------------------------------------------
def test_a_model_with_parts_outputs_the_total_as_their_sum():
    model = parts_model()
    assert model.output_names == ("dielectric", *PARTS) and len(model.heads) == 2
    assert build_model("dielectric", **TINY).config.parts  # new dielectric models predict parts
    assert not build_model("dielectric", **TINY, parts=False).config.parts
    structures = [triclinic_crystal(0), random_crystal(3)]
    outputs = model.predict(structures, all_outputs=True)
    assert outputs.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(outputs[:, 0], outputs[:, 1] + outputs[:, 2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.predict(structures), outputs[:, 0])
    with pytest.raises(ValueError, match="no parts"):
        build_model("elastic", **TINY, parts=True)
    with pytest.raises(ValueError, match="part_scales"):
        parts_model(part_scales=[1.0])


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_every_output_is_o3_equivariant(dtype, tol):
    model = parts_model(dtype=dtype, symmetrize_features=False, project_output=False, snap_output=False,
                        refine_structure=False)
    crystal = triclinic_crystal(2)
    base = model.predict([crystal], all_outputs=True)[0]
    rng = np.random.default_rng(7)
    for improper in (False, True):
        q = random_orthogonal(rng, improper=improper)
        moved = model.predict([rotated(crystal, q)], all_outputs=True)[0]
        for k, name in enumerate(model.output_names):
            assert relative_error(moved[k], rotate_tensor(base[k], q)) < tol, (name, improper)


def test_every_output_is_exactly_symmetric_on_the_seven_crystal_systems():
    model = parts_model(seed=3)
    crystals = ideal_crystals()
    names = list(crystals)
    assert_exactly_symmetric(model, crystals)
    for name, outputs in zip(names, model.predict([crystals[n] for n in names], all_outputs=True)):
        c = SymmetryConstraints.from_structure(crystals[name], DIELECTRIC)
        for k, t in enumerate(outputs):
            assert np.all(t[c.zero_mask()] == 0.0), (name, k)
            assert all(t[b] == s * t[a] for a, b, s in c.equalities), (name, k)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), weights=st.integers(0, 3))
def test_each_part_obeys_its_bound_whatever_the_weights(seed, weights):
    model = parts_model(seed=weights, part_scales=[30.0, 0.01])
    eps, electronic, ionic = model.predict([random_crystal(seed)], all_outputs=True)[0]
    assert operator_eigenvalues(electronic, DIELECTRIC_ELECTRONIC).min() > 1.0
    assert operator_eigenvalues(ionic, DIELECTRIC_IONIC).min() > 0.0
    assert operator_eigenvalues(eps, DIELECTRIC).min() > 1.0


def test_old_files_without_parts_keep_predicting_one_tensor(tmp_path):
    old = build_model("dielectric", **TINY, parts=False).eval()
    config = old.config.to_dict()
    del config["parts"], config["part_scales"]  # a file written before the setting
    path = save_model(old, tmp_path / "old.pt")
    blob = torch.load(path, weights_only=True)
    blob["config"] = config
    torch.save(blob, path)
    loaded = load_model(path)
    assert loaded.output_names == ("dielectric",)
    s = triclinic_crystal(1)
    np.testing.assert_array_equal(loaded.predict([s]), old.predict([s]))


def test_an_ensemble_averages_every_output_and_spreads_each():
    a, b = parts_model(seed=1), parts_model(seed=2)
    ens = EnsembleModel([a, b])
    s = [triclinic_crystal(0), random_crystal(5)]
    mean, spread = ens.predict(s, all_outputs=True, return_spread=True)
    np.testing.assert_allclose(mean, (a.predict(s, all_outputs=True) + b.predict(s, all_outputs=True)) / 2,
                               rtol=1e-10, atol=1e-12)
    assert spread.shape == (2, 3) and np.all(spread > 0)
    half = np.linalg.norm((a.predict(s, all_outputs=True) - b.predict(s, all_outputs=True)).reshape(2, 3, -1), axis=2) / 2
    np.testing.assert_allclose(spread, half, rtol=1e-8)
    with pytest.raises(GmtnetError, match="outputs"):
        EnsembleModel([a, build_model("dielectric", **TINY, parts=False, dtype="float64")])


# ---- training -----------------------------------------------------------------------------------
def test_the_parts_loss_adds_each_known_part_and_reduces_to_the_tensor_loss(rng):
    pred = torch.as_tensor(rng.normal(size=(4, 3, 3, 3)))
    target = torch.as_tensor(rng.normal(size=(4, 3, 3, 3)))
    known = torch.tensor([[True, True, True], [True, False, False], [True, True, True], [True, False, False]])
    for kind in ("fnorm", "huber"):
        whole = outputs_loss(pred, target, known, kind, 4, part_weight=0.5)
        rows = known[:, 1]
        expected = shard_loss(pred[:, 0], target[:, 0], kind, 4) + 0.5 * sum(
            shard_loss(pred[rows, k], target[rows, k], kind, 4) for k in (1, 2))
        torch.testing.assert_close(whole, expected)
        # shards of the global batch add up to it
        halves = outputs_loss(pred[:2], target[:2], known[:2], kind, 4, part_weight=0.5) + \
            outputs_loss(pred[2:], target[2:], known[2:], kind, 4, part_weight=0.5)
        torch.testing.assert_close(halves, whole)
        assert torch.equal(outputs_loss(pred[:, :1], target[:, :1], known[:, :1], kind, 4),
                           shard_loss(pred[:, 0], target[:, 0], kind, 4))


def test_training_supervises_the_parts_and_resumes(tmp_path, mp_root):
    from gmtnet.training import TrainConfig, train
    from gmtnet.training.trainer import part_scales

    def cfg(name, **kw):
        return TrainConfig(**{**dict(task="dielectric", epochs=1, batch_size=8, data_root=str(mp_root), seed=0,
                                     out=str(tmp_path / name), model_overrides=dict(TINY), loss="fnorm"), **kw})

    result = train(cfg("parts"), progress=False, cache_dir=tmp_path / "cache")
    model = load_model(result["best"])
    assert model.output_names == ("dielectric", *PARTS) and len(model.config.part_scales) == 2
    row = result["history"][-1]
    assert np.isfinite(row["val_fnorm_dielectric_electronic"]) and np.isfinite(row["val_fnorm_dielectric_ionic"])
    assert "val_fnorm_dielectric_ionic" in (tmp_path / "parts" / "log.csv").read_text().splitlines()[0]
    resumed = train(cfg("parts", epochs=2), resume=True, progress=False, cache_dir=tmp_path / "cache")
    assert load_model(resumed["last"].parent / "best.pt").config.part_scales == model.config.part_scales
    whole = load_model(train(cfg("whole", parts=False), progress=False, cache_dir=tmp_path / "cache")["best"])
    assert whole.output_names == ("dielectric",)
    # a data file gives totals only: no parts to learn from
    records = [{"id": f"x{i}", "structure": random_crystal(i).as_dict(), "tensor": (3.0 + i) * np.eye(3),
                "split": "train" if i < 4 else "val"} for i in range(6)]
    path = tmp_path / "totals.json"
    path.write_text(json.dumps([{**r, "tensor": r["tensor"].tolist()} for r in records]))
    totals = load_dataset("dielectric", source="file", path=path).split("train")
    assert len(totals) == 4 and all(r.parts is None for r in totals)
    assert part_scales(cfg("plain"), totals) is None  # a model without parts
    with pytest.raises(GmtnetError, match="no training record"):
        part_scales(cfg("none", parts=True), totals)


def test_init_member_chooses_a_member_of_an_ensemble(tmp_path):
    from gmtnet.model.io import transfer_weights

    a, b = (build_model("elastic", preset="fast", **TINY, seed=s) for s in (1, 2))
    path = save_model(EnsembleModel([a, b]), tmp_path / "ens.pt")
    target = build_model("dielectric", preset="fast", **TINY, seed=9)
    copied, _ = transfer_weights(target, path, member=2)
    assert all(torch.equal(target.state_dict()[k], b.state_dict()[k]) for k in copied)
    with pytest.raises(GmtnetError, match="ensemble of 2"):
        transfer_weights(target, path)
    with pytest.raises(GmtnetError, match="ensemble of 2"):
        transfer_weights(target, path, member=3)


# ---- error bounds and outputs -------------------------------------------------------------------
def test_each_output_gets_its_own_calibrated_bound(mp_root, tmp_path):
    data = load_dataset("dielectric", root=mp_root)
    a, b = parts_model(seed=1, dtype="float32"), parts_model(seed=2, dtype="float32")
    ens = EnsembleModel([a, b])
    bounds = calibrate_model(ens, data, calibration="fixture")
    assert set(bounds) == {"dielectric", *PARTS}
    assert bounds[PARTS[1]].n_calibration == sum(r.parts is not None for r in data)
    attach_error_bounds(ens, bounds)
    loaded = load_model(save_model(ens, tmp_path / "ens.pt", **ens.metadata))
    assert model_error_bounds(loaded) == bounds

    from gmtnet.prediction import Predictor

    result = Predictor("dielectric", models={"dielectric": loaded}).predict([data[0].structure])[0]
    assert set(result.tensors) == set(result.error_bounds) == {"dielectric", *PARTS}
    _, spread = loaded.predict([data[0].structure], all_outputs=True, return_spread=True)
    for k, name in enumerate(loaded.output_names):
        assert result.error_bounds[name] == pytest.approx(float(bounds[name].bounds(spread[:, k])[0]))


def test_predictions_hold_the_parts_and_the_refractive_indices(tmp_path):
    import gmtnet
    from gmtnet.prediction import Predictor
    from gmtnet.prediction.formatting import as_csv, as_json, as_table

    model = parts_model(seed=4, dtype="float32")
    models = {"dielectric": model}
    s = ideal_crystals()["rutile_TiO2"]
    r = Predictor("dielectric", models=models).predict([s])[0]
    assert set(r.tensors) == {"dielectric", *PARTS}
    np.testing.assert_allclose(r.tensors["dielectric"], r.tensors[PARTS[0]] + r.tensors[PARTS[1]], rtol=1e-6)
    eig = np.linalg.eigvalsh(r.tensors[PARTS[0]])
    props = r.properties[PARTS[0]]
    np.testing.assert_allclose(props["refractive_indices"], np.sqrt(eig), rtol=1e-12)
    assert props["refractive_index"] == pytest.approx(np.sqrt(np.trace(r.tensors[PARTS[0]]) / 3))
    assert r.independent[PARTS[1]] == r.independent["dielectric"] == ["eps11", "eps33"]
    assert "dielectric_ionic, Cartesian form" in as_table([r]) and "refractive_indices" in as_table([r])
    header = as_csv([r]).splitlines()[0].split(",")
    assert {"dielectric_ionic_eps33", "dielectric_electronic_refractive_index"} <= set(header)
    assert set(json.loads(as_json([r]))[0]["tensors"]) == {"dielectric", *PARTS}
    ionic = gmtnet.predict([s], task="dielectric_ionic", models=models)
    np.testing.assert_array_equal(ionic[0], r.tensors[PARTS[1]])
    every = gmtnet.predict([s], task="all", models=models)
    assert {"dielectric", *PARTS, "elastic", "piezoelectric"} == set(every)
    with pytest.raises(GmtnetError, match="predicts dielectric, not dielectric_ionic"):
        gmtnet.predict([s], task="dielectric_ionic", models={"dielectric": parts_model(parts=False, part_scales=None)})
