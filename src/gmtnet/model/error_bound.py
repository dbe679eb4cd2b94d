"""Per-crystal error bounds: a calibrated upper bound on the Frobenius norm of a prediction's error.

The bound of crystal i is ``b_i = scale * (s_i + offset)`` in label units, where s_i is the
spread of an ensemble's members around their mean,

    s_i = sqrt( (1/M) sum_m ||T_m,i - T_i||_F^2 ),   T_i = (1/M) sum_m T_m,i,

(0 for a single model, whose bound is then the constant ``scale * offset``). The spread is
invariant under rotations and reflections of the crystal (each member's prediction rotates
with it), so the bound is too.

Calibration (split conformal prediction): on crystals the model was not trained on (the val
split) with errors e_i and spreads s_i, ``offset`` is the median spread (1 label unit when every
spread is 0) and ``scale`` is the ceil((n + 1) c)-th smallest of the scores e_i / (s_i + offset),
for the wanted coverage c. If the calibration crystals and new ones are exchangeable (drawn
alike), e_i <= b_i then holds for at least a fraction c of new crystals on average; for crystals
unlike the training data it promises nothing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import pearsonr, spearmanr

from gmtnet.errors import GmtnetError

#: The key under which a model file's metadata holds its calibrated bound (of its task's tensor).
METADATA_KEY = "error_bound"
#: ... and the bounds of its parts, {part name: bound} (a model with parts, ``ModelConfig.parts``).
PARTS_METADATA_KEY = "part_error_bounds"
DEFAULT_COVERAGE = 0.9


def member_spread(member_predictions: np.ndarray) -> np.ndarray:
    """(N,) spread s_i of (M, N, 3, ..., 3) member predictions around their mean (see module)."""
    p = np.asarray(member_predictions, dtype=np.float64)
    deviation = (p - p.mean(axis=0)).reshape(p.shape[0], p.shape[1], -1)
    return np.sqrt(np.mean(np.sum(deviation ** 2, axis=2), axis=0))


@dataclass(frozen=True)
class ErrorBound:
    """A calibrated error bound (see module): ``bounds(spread) = scale * (spread + offset)``.

    Attributes:
        coverage: the fraction of crystals the bound is meant to hold for (e.g. 0.9).
        scale: dimensionless factor.
        offset: label units, added to every spread.
        n_calibration: crystals it was calibrated on.
        calibration: where those came from, e.g. "mp2026 val".
        calibration_coverage: the fraction of calibration crystals within their bound (None if
            not recorded).
    """

    coverage: float
    scale: float
    offset: float
    n_calibration: int
    calibration: str = ""
    calibration_coverage: float | None = None

    def bounds(self, spread) -> np.ndarray:
        """(N,) bounds in label units for (N,) spreads (zeros for a single model)."""
        return self.scale * (np.asarray(spread, dtype=np.float64) + self.offset)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data, source: str = "model file") -> ErrorBound:
        """The bound stored in a model file's metadata; GmtnetError naming ``source`` if malformed."""
        try:
            bound = cls(**data)
            values = (bound.coverage, bound.scale, bound.offset)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) \
                    or not 0 < bound.coverage < 1 or bound.scale < 0 or bound.offset < 0:
                raise ValueError("coverage, scale or offset out of range")
            return bound
        except (TypeError, ValueError) as exc:
            raise GmtnetError(f"{source}: malformed error bound ({exc})") from None


def calibrate(errors, spreads, coverage: float = DEFAULT_COVERAGE, calibration: str = "") -> ErrorBound:
    """The ErrorBound of (n,) Frobenius ``errors`` and (n,) ``spreads`` of held-out crystals at
    ``coverage`` (split conformal, see module). With fewer than 1/(1 - coverage) - 1 crystals the
    quantile does not exist and the largest score is used (the bound then covers every
    calibration crystal, which promises less than ``coverage``)."""
    errors, spreads = np.asarray(errors, dtype=np.float64), np.asarray(spreads, dtype=np.float64)
    if errors.ndim != 1 or errors.shape != spreads.shape or len(errors) == 0:
        raise GmtnetError("calibration needs one error and one spread per crystal, at least one crystal")
    if not 0 < coverage < 1:
        raise GmtnetError(f"coverage must lie in (0, 1), got {coverage}")
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(spreads))):
        raise GmtnetError("calibration errors and spreads must be finite")
    median = float(np.median(spreads))
    offset = median if median > 0 else 1.0
    scores = np.sort(errors / (spreads + offset))
    rank = min(math.ceil((len(scores) + 1) * coverage), len(scores))  # 1-based
    scale = float(scores[rank - 1])
    inside = float(np.mean(errors <= scale * (spreads + offset)))
    return ErrorBound(coverage=float(coverage), scale=scale, offset=offset, n_calibration=len(errors),
                      calibration=calibration, calibration_coverage=inside)


def model_error_bound(model) -> ErrorBound | None:
    """The ErrorBound a loaded model carries (``model.metadata``), or None if it was not calibrated."""
    data = getattr(model, "metadata", {}).get(METADATA_KEY)
    return None if data is None else ErrorBound.from_dict(data)


def model_error_bounds(model) -> dict[str, ErrorBound]:
    """{output name: ErrorBound} of every output of a loaded model that carries a calibrated bound:
    its task's tensor (``model_error_bound``) and, for a model with parts, each part."""
    bounds = {}
    total = model_error_bound(model)
    if total is not None:
        bounds[model.ttype.name] = total
    parts = getattr(model, "metadata", {}).get(PARTS_METADATA_KEY) or {}
    if not isinstance(parts, dict):
        raise GmtnetError("model file: malformed part error bounds (not a table)")
    for name in model.output_names[1:]:
        if name in parts:
            bounds[name] = ErrorBound.from_dict(parts[name])
    return bounds


def bound_agreement(errors, bounds) -> dict:
    """How bounds and errors of the same crystals agree: the fraction of errors within their
    bound (coverage), the mean bound, and the Pearson and Spearman correlations of bound and
    error (None when either is constant)."""
    errors, bounds = np.asarray(errors, dtype=np.float64), np.asarray(bounds, dtype=np.float64)
    varied = len(errors) > 2 and np.ptp(errors) > 0 and np.ptp(bounds) > 0
    return {"n": int(len(errors)), "coverage": float(np.mean(errors <= bounds)) if len(errors) else None,
            "mean_bound": float(np.mean(bounds)) if len(bounds) else None,
            "pearson": float(pearsonr(bounds, errors)[0]) if varied else None,
            "spearman": float(spearmanr(bounds, errors)[0]) if varied else None}
