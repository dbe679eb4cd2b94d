"""Calibrating a model's error bounds on held-out crystals (see ``gmtnet.model.error_bound``)."""

from __future__ import annotations

from gmtnet.errors import GmtnetError
from gmtnet.model.error_bound import DEFAULT_COVERAGE, METADATA_KEY, PARTS_METADATA_KEY, ErrorBound, calibrate
from gmtnet.training.evaluate import evaluate_model


def calibrate_model(model, records, coverage: float = DEFAULT_COVERAGE, calibration: str = "",
                    batch_size: int = 64) -> dict[str, ErrorBound]:
    """{output name: ErrorBound} of ``model`` on ``records`` (crystals it was not trained on,
    normally the val split; each label in its structure's frame), from the Frobenius norms of its
    errors and its members' spreads as ``model.predict`` gives them: one for its task's tensor,
    and for a model with parts one per part, calibrated on the records that have the parts.
    ``calibration`` names the records (e.g. "mp2026 val")."""
    if not records:
        raise GmtnetError("no crystals to calibrate the error bound on")
    return bounds_of_evaluation(evaluate_model(model, records, batch_size=batch_size), coverage, calibration)


def bounds_of_evaluation(result: dict, coverage: float = DEFAULT_COVERAGE, calibration: str = "") -> dict[str, ErrorBound]:
    """``calibrate_model`` from a model's ``evaluate_model`` result on the calibration crystals:
    {output name: ErrorBound} of the errors and spreads of its tensor and of each part."""
    return {scored["output"]: calibrate(scored["errors"], scored["spread"], coverage, calibration)
            for scored in (result, *result["parts"].values())}


def attach_error_bound(model, bound: ErrorBound, name: str | None = None) -> None:
    """Record ``bound`` in ``model.metadata`` (saved with the model by ``save_model``) as the bound
    of output ``name`` (default: the task's tensor; a part's name for a model with parts)."""
    metadata = dict(getattr(model, "metadata", {}))
    if name is None or name == model.ttype.name:
        metadata[METADATA_KEY] = bound.to_dict()
    elif name in model.output_names:
        metadata[PARTS_METADATA_KEY] = {**(metadata.get(PARTS_METADATA_KEY) or {}), name: bound.to_dict()}
    else:
        raise GmtnetError(f"the model has no output {name!r} (its outputs: {', '.join(model.output_names)})")
    model.metadata = metadata


def attach_error_bounds(model, bounds: dict[str, ErrorBound]) -> None:
    """``attach_error_bound`` for each {output name: bound} of ``calibrate_model``."""
    for name, bound in bounds.items():
        attach_error_bound(model, bound, name)
