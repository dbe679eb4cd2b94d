"""Screening metrics of piezoelectric models against their definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gmtnet.tensors import PIEZOELECTRIC, from_voigt
from gmtnet.training.screening import (FALSE_FLAG, STRONG, average_precision, false_flags, max_abs_voigt, roc_auc,
                                       screening_metrics, screening_report, screening_table)


def _pairs_auc(scores, positive):
    """The probability that a positive outscores a negative, over every pair (ties: one half)."""
    pos, neg = scores[positive], scores[~positive]
    wins = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=30))
def test_roc_auc_and_average_precision_by_definition(rows):
    scores = np.array([float(s) for s, _ in rows])  # few values: many ties
    positive = np.array([p for _, p in rows])
    if positive.all() or not positive.any():
        assert roc_auc(scores, positive) is None
    else:
        assert roc_auc(scores, positive) == pytest.approx(_pairs_auc(scores, positive))
    if positive.any():
        precisions = [np.mean(positive[scores >= s]) for s in scores[positive]]
        assert average_precision(scores, positive) == pytest.approx(np.mean(precisions))


def test_perfect_and_reversed_rankings():
    scores, positive = np.arange(6.0), np.array([False] * 3 + [True] * 3)
    assert roc_auc(scores, positive) == 1.0 and average_precision(scores, positive) == 1.0
    assert roc_auc(-scores, positive) == 0.0


def _tensor(rng, size):
    v = rng.normal(size=(3, 6))
    return from_voigt(size * v / np.abs(v).max(), PIEZOELECTRIC)


def test_size_direction_and_the_bulk_against_zero(rng=np.random.default_rng(5)):
    labels = np.stack([_tensor(rng, s) for s in np.geomspace(0.01, 20, 40)])
    exact = screening_metrics(labels, labels)
    assert exact["roc_auc"] == 1.0 and exact["spearman"] == pytest.approx(1.0)
    assert exact["median_abs_log_ratio"] == pytest.approx(0.0, abs=1e-12) and exact["median_cosine"] == pytest.approx(1.0)
    assert exact["n_strong"] == int((max_abs_voigt(labels) > STRONG).sum())
    assert exact["bulk"]["fnorm"] == 0.0 and exact["bulk"]["verdict"] == "lower"
    halved = screening_metrics(labels / 2, labels)  # right direction, half the size
    assert halved["median_abs_log_ratio"] == pytest.approx(np.log(2)) and halved["median_cosine"] == pytest.approx(1.0)
    assert halved["spearman"] == pytest.approx(1.0)
    flipped = screening_metrics(-labels, labels)
    assert flipped["median_cosine"] == pytest.approx(-1.0) and flipped["all"]["verdict"] == "higher"
    zero = screening_metrics(np.zeros_like(labels), labels)
    assert zero["median_cosine"] == 0.0 and zero["all"]["difference"] == 0.0
    norms = np.linalg.norm(labels.reshape(40, -1), axis=1)
    assert zero["tail"]["n"] == int((norms > np.quantile(norms, 0.95)).sum()) and zero["bulk"]["n"] + zero["tail"]["n"] == 40
    assert zero["n_sized"] == int((norms > 0.05).sum())
    report = screening_report(labels, labels, ["cubic"] * 20 + ["trigonal"] * 20)
    assert set(report["by_crystal_system"]) == {"cubic", "trigonal"}
    assert report["by_crystal_system"]["cubic"]["tail_threshold"] == report["overall"]["tail_threshold"]
    assert "| overall | 40 |" in screening_table(report)


def test_false_flags_counts_only_centrosymmetric_crystals(crystals):
    class Constant:
        """Predicts the same large tensor for every crystal, whatever its symmetry."""

        def predict(self, structures, batch_size=64):
            return np.stack([from_voigt(np.full((3, 6), 0.5), PIEZOELECTRIC)] * len(structures))

    names = ["rutile_TiO2", "rocksalt_NaCl", "wurtzite_ZnO", "alpha_quartz"]
    flags = false_flags(Constant(), [crystals[n] for n in names])
    assert flags == {"n_centrosymmetric": 2, "false_flags": 2, "threshold": FALSE_FLAG}
