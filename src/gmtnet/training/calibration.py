"""Calibrating a model's error bound on held-out crystals (see ``gmtnet.model.error_bound``)."""

from __future__ import annotations

import numpy as np

from gmtnet.errors import GmtnetError
from gmtnet.model.error_bound import DEFAULT_COVERAGE, METADATA_KEY, ErrorBound, calibrate


def calibrate_model(model, records, coverage: float = DEFAULT_COVERAGE, calibration: str = "",
                    batch_size: int = 64) -> ErrorBound:
    """The ErrorBound of ``model`` on ``records`` (crystals it was not trained on, normally the
    val split; each label in its structure's frame), from the Frobenius norms of its errors and
    its members' spreads as ``model.predict`` gives them. ``calibration`` names the records
    (e.g. "mp2026 val")."""
    if not records:
        raise GmtnetError("no crystals to calibrate the error bound on")
    preds, spread = model.predict([r.structure for r in records], batch_size=batch_size, return_spread=True)
    labels = np.stack([r.tensor for r in records])
    errors = np.linalg.norm((preds - labels).reshape(len(records), -1), axis=1)
    return calibrate(errors, spread, coverage, calibration)


def attach_error_bound(model, bound: ErrorBound) -> None:
    """Record ``bound`` in ``model.metadata`` (saved with the model by ``save_model``)."""
    model.metadata = {**getattr(model, "metadata", {}), METADATA_KEY: bound.to_dict()}
