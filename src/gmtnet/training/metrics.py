"""The paper's four tensor metrics (section 5.1), overall and per crystal system.

Definitions used here (per test crystal, then averaged):
- zero success: every component that the crystal's point group forces to zero has |pred| < 1e-5
  (crystals with no forced zeros, e.g. triclinic dielectric, are not counted);
- equality success: every forced equality between distinct components (beyond the tensor's own
  index symmetry, signs included) holds to |T[a] - s T[b]| < 1e-4 (crystals without one not counted);
- Fnorm: ||pred - label||_F in label units, mean over crystals;
- EwT x%: share of crystals with ||pred - label||_F / ||label||_F < x/100;
- Fnorm 95% interval: percentile bootstrap over crystals (resampling the test crystals with
  replacement, 2,000 times, fixed seed). With 77-102 test crystals whose label norms span two
  orders of magnitude, this says how far a test Fnorm could move with another draw of the set.
Forced patterns come from the crystal's point group (spglib, symprec 1e-3) in its own frame.

Tensors with a stability bound (``TensorType.lower_bound``) get the number and share of
predictions that break it (``tensors.bounds.within_bound``, exact): a stiffness that is not
positive definite, a permittivity with an eigenvalue of 1 or less. No stable crystal has either.
Elastic tensors also get (GPa) the mean absolute error of the Voigt-Reuss-Hill bulk and shear
moduli of prediction and label (pymatgen's ``ElasticTensor.k_vrh`` / ``g_vrh``; a crystal whose
moduli cannot be computed, e.g. a singular predicted stiffness, is left out of that mean and
counted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gmtnet.tensors import ELASTIC, TENSOR_TYPES, get_tensor_type
from gmtnet.tensors.bounds import has_bound, within_bound

ZERO_TOL = 1e-5
EQUALITY_TOL = 1e-4
EWT_THRESHOLDS = (0.25, 0.10, 0.05)
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


@dataclass
class TensorMetrics:
    """Metrics of one group of crystals; success rates are None when no crystal has the pattern."""

    n: int
    fnorm: float
    ewt25: float
    ewt10: float
    ewt5: float
    zero_success: float | None
    n_with_zeros: int
    equality_success: float | None
    n_with_equalities: int
    fnorm_ci95: tuple[float, float] = (float("nan"), float("nan"))
    k_vrh_mae: float | None = None  # elastic only, GPa
    g_vrh_mae: float | None = None  # elastic only, GPa
    n_moduli: int | None = None  # elastic only: crystals in the two MAEs
    n_out_of_bound: int | None = None  # types with a stability bound: predictions that break it
    out_of_bound: float | None = None  # and their share

    def to_dict(self) -> dict:
        return asdict(self)


def crystal_checks(pred: np.ndarray, constraints) -> tuple[bool | None, bool | None]:
    """(zeros ok, equalities ok) of one prediction; None where the point group forces none."""
    zeros = constraints.zero_components
    zero_ok = None if not zeros else bool(all(abs(pred[idx]) < ZERO_TOL for idx in zeros))
    eqs = constraints.equalities
    eq_ok = None if not eqs else bool(all(abs(pred[b] - s * pred[a]) < EQUALITY_TOL for a, b, s in eqs))
    return zero_ok, eq_ok


def bootstrap_interval(values: np.ndarray, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (n,): the (1-level)/2 and
    (1+level)/2 quantiles of the means of ``resamples`` resamples of size n drawn with replacement.
    (nan, nan) for an empty array; deterministic for a given seed."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _rate(flags: list) -> tuple[float | None, int]:
    flags = [f for f in flags if f is not None]
    return (float(np.mean(flags)) if flags else None), len(flags)


def vrh_moduli(tensors: np.ndarray) -> np.ndarray:
    """(N, 2) Voigt-Reuss-Hill bulk and shear moduli (GPa) of elastic tensors (N, 3, 3, 3, 3),
    through pymatgen's ElasticTensor; nan where they cannot be computed (no compliance)."""
    from pymatgen.analysis.elasticity import ElasticTensor

    out = np.full((len(tensors), 2), np.nan)
    for i, c in enumerate(tensors):
        try:
            et = ElasticTensor(c)
            out[i] = et.k_vrh, et.g_vrh
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            pass
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def _elastic_fields(pred_moduli: np.ndarray, label_moduli: np.ndarray) -> dict:
    """The moduli fields of TensorMetrics for one group of elastic tensors."""
    ok = np.isfinite(pred_moduli).all(axis=1) & np.isfinite(label_moduli).all(axis=1)
    mae = np.abs(pred_moduli[ok] - label_moduli[ok]).mean(axis=0) if ok.any() else np.full(2, np.nan)
    return {"k_vrh_mae": float(mae[0]), "g_vrh_mae": float(mae[1]), "n_moduli": int(ok.sum())}


def _bound_fields(inside: np.ndarray) -> dict:
    """The stability-bound fields of TensorMetrics for one group (``inside`` (n,) bool)."""
    bad = int((~inside).sum())
    return {"n_out_of_bound": bad, "out_of_bound": bad / len(inside) if len(inside) else float("nan")}


def _group(errors, norms, zero_flags, eq_flags, elastic: dict | None = None) -> TensorMetrics:
    rel = errors / np.maximum(norms, 1e-12)
    zero, n_zero = _rate(zero_flags)
    eq, n_eq = _rate(eq_flags)
    return TensorMetrics(n=len(errors), fnorm=float(np.mean(errors)) if len(errors) else float("nan"),
                         ewt25=float(np.mean(rel < 0.25)), ewt10=float(np.mean(rel < 0.10)),
                         ewt5=float(np.mean(rel < 0.05)), zero_success=zero, n_with_zeros=n_zero,
                         equality_success=eq, n_with_equalities=n_eq, fnorm_ci95=bootstrap_interval(errors),
                         **(elastic or {}))


def _tensor_type(shape: tuple, task: str | None):
    """The tensor type of labels of ``shape``: ``task``'s, else the built-in type of that order
    whose shape it is (dielectric for (3, 3), elastic for (3, 3, 3, 3)), else None."""
    if task is not None:
        return get_tensor_type(task)

    matches = [t for t in TENSOR_TYPES.values() if t.shape == tuple(shape)]
    return matches[0] if len(matches) == 1 else None


def tensor_metrics(preds: np.ndarray, labels: np.ndarray, constraints: list, crystal_systems: list[str],
                   task: str | None = None, derived: bool = True) -> dict:
    """{"overall": TensorMetrics, "by_crystal_system": {system: TensorMetrics}, "errors": (N,)}.

    Args:
        preds, labels: (N, 3, ..., 3) in the same frame and units. Elastic tensors also get
            the moduli MAEs; types with a stability bound the count of predictions breaking it.
        task: the tensor type's name (default: the built-in type of the labels' shape).
        derived: also the moduli MAEs and the stability-bound counts (False: the four metrics
            only, e.g. for the validation of every training epoch).
        constraints: N SymmetryConstraints (the point group of each crystal).
        crystal_systems: N crystal-system names.
    """
    preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    n = len(preds)
    errors = np.linalg.norm((preds - labels).reshape(n, -1), axis=1)
    norms = np.linalg.norm(labels.reshape(n, -1), axis=1)
    checks = [crystal_checks(p, c) for p, c in zip(preds, constraints)]
    zero_flags, eq_flags = [c[0] for c in checks], [c[1] for c in checks]
    ttype = _tensor_type(labels.shape[1:], task) if derived else None
    elastic = ttype is ELASTIC
    if elastic:
        pred_moduli, label_moduli = vrh_moduli(preds), vrh_moduli(labels)
    bound = ttype is not None and has_bound(ttype)
    if bound:
        inside = np.array([within_bound(p, ttype) for p in preds], dtype=bool)

    def group(idx: np.ndarray) -> TensorMetrics:
        extra = {}
        if elastic:
            extra.update(_elastic_fields(pred_moduli[idx], label_moduli[idx]))
        if bound:
            extra.update(_bound_fields(inside[idx]))
        return _group(errors[idx], norms[idx], [zero_flags[i] for i in idx], [eq_flags[i] for i in idx], extra)

    systems = np.asarray(crystal_systems)
    by_system = {}
    for system in CRYSTAL_SYSTEMS:
        idx = np.flatnonzero(systems == system)
        if len(idx):
            by_system[system] = group(idx)
    return {"overall": group(np.arange(n)), "by_crystal_system": by_system, "errors": errors}


def paired_difference(errors: np.ndarray, other_errors: np.ndarray) -> dict:
    """Mean Fnorm difference of two predictors on the same crystals (errors (n,) each, this minus
    other) with its paired percentile-bootstrap 95% interval (the same resamples for both), and a
    verdict: "lower" or "higher" where the interval excludes 0, else "not distinguishable"."""
    diff = np.asarray(errors, dtype=np.float64) - np.asarray(other_errors, dtype=np.float64)
    low, high = bootstrap_interval(diff)
    verdict = "lower" if high < 0 else "higher" if low > 0 else "not distinguishable"
    return {"difference": float(diff.mean()), "ci95": [low, high], "verdict": verdict, "n": len(diff)}
