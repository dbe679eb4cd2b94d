"""Error bounds: the members' spread by its definition, split-conformal calibration, O(3)
invariance, and the bound wherever a prediction is shown (API, table, JSON, CSV, evaluate)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gmtnet.cli.app import main
from gmtnet.errors import GmtnetError
from gmtnet.model import load_model, save_model
from gmtnet.model.ensemble import EnsembleModel
from gmtnet.model.error_bound import (ErrorBound, bound_agreement, calibrate, member_spread,
                                      model_error_bound)
from gmtnet.prediction import Predictor
from gmtnet.prediction.formatting import as_csv, as_json, as_table
from gmtnet.prediction.predictor import predict
from gmtnet.tensors import TENSOR_TYPES, random_orthogonal
from gmtnet.training.calibration import attach_error_bound
from test_ensemble import two_members
from test_model import rotated, triclinic_crystal


def test_member_spread_is_the_rms_frobenius_deviation_from_the_mean(rng):
    members = rng.normal(size=(4, 5, 3, 3, 3))
    mean = members.mean(axis=0)
    for i in range(5):
        want = math.sqrt(sum(np.sum((members[m, i] - mean[i]) ** 2) for m in range(4)) / 4)
        assert member_spread(members)[i] == pytest.approx(want, rel=1e-12)
    same = np.repeat(members[:1], 3, axis=0)
    np.testing.assert_allclose(member_spread(same), np.zeros(5), atol=1e-14)


def test_calibration_takes_the_conformal_rank():
    spreads = np.ones(9)  # offset = median spread = 1: scores are errors / 2
    errors = np.arange(1.0, 10.0)
    bound = calibrate(errors, spreads, coverage=0.8)
    assert bound.offset == 1.0
    assert bound.scale == pytest.approx(4.0)  # ceil(10 * 0.8) = 8th smallest score: 8 / 2
    assert bound.calibration_coverage == pytest.approx(8 / 9)
    np.testing.assert_allclose(bound.bounds(np.array([0.0, 1.0, 3.0])), [4.0, 8.0, 16.0])
    # a single model (no spread) gets one bound for all: the conformal quantile of the errors
    single = calibrate(errors, np.zeros(9), coverage=0.8)
    assert single.offset == 1.0 and single.scale == pytest.approx(8.0)
    # too few crystals for the rank: the largest score
    assert calibrate(errors[:3], spreads[:3], coverage=0.9).scale == pytest.approx(1.5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), coverage=st.sampled_from([0.8, 0.9, 0.95]))
def test_calibrated_bounds_cover_exchangeable_crystals(seed, coverage):
    """Errors drawn alike for calibration and new crystals (heteroscedastic, the spread telling
    part of the scale): the bound holds for the wanted fraction of the new ones."""
    rng = np.random.default_rng(seed)

    def draw(n):
        spread = rng.gamma(2.0, 1.0, n)
        return np.abs(rng.normal(size=n)) * (0.5 + spread), spread

    n_calibration, n_new = 20000, 20000
    bound = calibrate(*draw(n_calibration), coverage=coverage)
    errors, spreads = draw(n_new)
    # the achieved coverage scatters by sqrt(c (1 - c) / n) for each sample: allow 5 of those
    tolerance = 5 * np.sqrt(coverage * (1 - coverage) * (1 / n_calibration + 1 / n_new))
    assert abs(np.mean(errors <= bound.bounds(spreads)) - coverage) < tolerance


def test_calibration_refuses_what_it_cannot_use():
    with pytest.raises(GmtnetError):
        calibrate(np.ones(3), np.ones(2))
    with pytest.raises(GmtnetError):
        calibrate(np.ones(3), np.ones(3), coverage=1.0)
    with pytest.raises(GmtnetError):
        calibrate(np.array([1.0, np.nan]), np.ones(2))
    for bad in ({"coverage": 0.9}, {"coverage": 1.5, "scale": 1.0, "offset": 1.0, "n_calibration": 3},
                {"coverage": 0.9, "scale": -1.0, "offset": 1.0, "n_calibration": 3}, "not a dict"):
        with pytest.raises(GmtnetError, match="malformed error bound"):
            ErrorBound.from_dict(bad)


def test_bound_agreement_counts_coverage_and_correlation():
    a = bound_agreement(np.array([1.0, 2.0, 3.0, 10.0]), np.array([2.0, 3.0, 4.0, 5.0]))
    assert a["coverage"] == 0.75 and a["mean_bound"] == 3.5 and a["spearman"] == pytest.approx(1.0)
    assert bound_agreement(np.array([1.0, 2.0, 3.0]), np.full(3, 2.0))["pearson"] is None


@pytest.mark.parametrize("task", list(TENSOR_TYPES))
def test_spread_is_o3_invariant_and_the_mean_unchanged(task):
    a, b = two_members(task)
    ens = EnsembleModel([a, b]).eval()
    crystal = triclinic_crystal(5)
    base, spread = ens.predict([crystal], return_spread=True)
    np.testing.assert_array_equal(base, ens.predict([crystal]))
    assert spread[0] > 0
    single, zero = a.predict([crystal], return_spread=True)
    assert zero[0] == 0.0 and np.array_equal(single, a.predict([crystal]))
    rng = np.random.default_rng(3)
    for improper in (False, True):
        q = random_orthogonal(rng, improper=improper)
        _, moved = ens.predict([rotated(crystal, q)], return_spread=True)
        assert moved[0] == pytest.approx(spread[0], rel=1e-8)


@pytest.fixture(scope="module")
def calibrated_dielectric(tmp_path_factory):
    """A two-member dielectric ensemble file with an error bound attached."""
    a, b = two_members("dielectric", dtype=torch.float32)
    ens = EnsembleModel([a, b])
    attach_error_bound(ens, ErrorBound(coverage=0.9, scale=2.0, offset=0.5, n_calibration=10, calibration="test",
                                         calibration_coverage=0.9))
    path = tmp_path_factory.mktemp("bound") / "ens.pt"
    save_model(ens, path, **ens.metadata)
    return path


def test_predictions_carry_the_bound_everywhere(calibrated_dielectric):
    model = load_model(calibrated_dielectric)
    bound = model_error_bound(model)
    assert bound == ErrorBound(coverage=0.9, scale=2.0, offset=0.5, n_calibration=10, calibration="test",
                               calibration_coverage=0.9)
    crystal = triclinic_crystal(2)
    _, spread = model.predict([crystal], return_spread=True)
    want = 2.0 * (spread[0] + 0.5)
    r = Predictor("dielectric", models={"dielectric": model}).predict([crystal])[0]
    assert r.error_bounds["dielectric"] == pytest.approx(want, rel=1e-6)
    assert r.error_bound_coverage["dielectric"] == 0.9
    assert "error bound" in as_table([r]) and "90% of crystals" in as_table([r])
    entry = json.loads(as_json([r]))[0]["tensors"]["dielectric"]
    assert entry["error_bound"] == pytest.approx(want, rel=1e-6) and entry["error_bound_coverage"] == 0.9
    row = next(csv.DictReader(io.StringIO(as_csv([r]))))
    assert float(row["dielectric_error_bound"]) == pytest.approx(want, rel=1e-5)
    tensors, bounds = predict([crystal], task="dielectric", models={"dielectric": model}, return_error_bound=True)
    assert tensors.shape == (1, 3, 3) and bounds[0] == pytest.approx(want, rel=1e-6)
    # a model without a bound: no bound shown, NaN from the API, an empty CSV cell
    plain = Predictor("dielectric", models={"dielectric": model.members[0]}).predict([crystal])[0]
    assert plain.error_bounds == {} and "error bound" not in as_table([plain])
    assert next(csv.DictReader(io.StringIO(as_csv([plain]))))["dielectric_error_bound"] == ""
    _, nan = predict([crystal], task="dielectric", models={"dielectric": model.members[0]}, return_error_bound=True)
    assert np.isnan(nan[0])


def test_calibrate_and_evaluate_commands(calibrated_dielectric, tmp_path, mp_root, monkeypatch, capsys):
    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    out = tmp_path / "calibrated.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "calibrate", str(calibrated_dielectric), "--out", str(out), "--split", "val", "--coverage", "0.8"])
    assert exit_info.value.code in (0, None)
    assert "error bound" in capsys.readouterr().out
    bound = model_error_bound(load_model(out))
    assert bound.coverage == 0.8 and bound.calibration == "mp val" and bound.calibration_coverage >= 0.8
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(out), "--split", "val", "--json"])
    report = json.loads(capsys.readouterr().out)["error_bound"]
    assert report["overall"]["n"] == bound.n_calibration
    assert report["overall"]["coverage"] == pytest.approx(bound.calibration_coverage)
    assert sum(a["n"] for a in report["by_crystal_system"].values()) == bound.n_calibration
    # a file that is not a model is never replaced
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "calibrate", str(out), "--out", str(keep)])
    assert exit_info.value.code == 1 and keep.read_text() == "mine"
    assert "error: --out" in capsys.readouterr().err
