"""Evaluating a model on a data split: the four metrics overall and per crystal system,
as JSON and as a markdown table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gmtnet.data import load_dataset
from gmtnet.errors import GmtnetError
from gmtnet.model import load_model
from gmtnet.data.records import output_labels
from gmtnet.model.error_bound import bound_agreement, model_error_bounds
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import get_tensor_type, parent_type, rotate_tensor
from gmtnet.tensors.bounds import has_bound, violation_name
from gmtnet.training.metrics import CRYSTAL_SYSTEMS, paired_difference, tensor_metrics

METRIC_SYMPREC = 1e-3


def rotate_structure(structure, rotation: np.ndarray):
    """The structure in a rotated (or reflected) Cartesian frame: positions r -> R r."""
    from pymatgen.core import Lattice, Structure

    lattice = Lattice(structure.lattice.matrix @ np.asarray(rotation).T)
    return Structure(lattice, structure.species, structure.frac_coords, site_properties=structure.site_properties)


def evaluate_predictions(preds: np.ndarray, records, task: str, structures=None, constraints=None,
                         labels: np.ndarray | None = None) -> dict:
    """Metrics of predictions against the records' labels (frames must match).

    The forced patterns come from each structure's point group at symprec 1e-3 (``structures``
    defaults to the records' own; ``constraints``, one SymmetryConstraints per record of the
    task's type or a type of the same form, when already known). ``task`` may name a part
    (e.g. "dielectric_ionic"), scored against ``labels`` (N, 3, ..., 3) (default: the records'
    tensors) with the part's own bound."""
    ttype = get_tensor_type(task)
    structures = structures if structures is not None else [r.structure for r in records]
    if constraints is None:
        constraints = [SymmetryConstraints.from_structure(s, parent_type(ttype), symprec=METRIC_SYMPREC)
                       for s in structures]
    labels = np.stack([r.tensor for r in records]) if labels is None else labels
    result = tensor_metrics(preds, labels, constraints, [r.crystal_system for r in records], ttype.name)
    if has_bound(ttype):
        result["bound_name"] = violation_name(ttype)
    return result


def rotate_record(record, rotation: np.ndarray, structure=None):
    """The record with its structure (``structure`` if given, else rotated) and its labels (the
    tensor and any parts) expressed in the frame rotated by ``rotation``."""
    parts = None if record.parts is None else {k: rotate_tensor(v, rotation) for k, v in record.parts.items()}
    return replace(record, structure=structure if structure is not None else rotate_structure(record.structure, rotation),
                   tensor=rotate_tensor(record.tensor, rotation), parts=parts)


def evaluate_model(model, records, rotation: np.ndarray | None = None, batch_size: int = 64) -> dict:
    """Predict the records with ``model.predict`` (the user-facing path, snapping included) and
    score them. With ``rotation`` (3x3 orthogonal) every crystal and label is first expressed in
    the rotated frame (paper Table 12).

    The result holds the task's metrics (``tensor_metrics``), the ``output`` scored (the task's
    name), its ``predictions`` and members' ``spread``, the ``error_bound`` report of a
    calibrated model, and ``parts``: for a model with parts {part name: the same for the records
    whose labels have parts (``n`` of them)}, else empty."""
    structures = [r.structure for r in records]
    if rotation is not None:
        structures = [rotate_structure(s, rotation) for s in structures]
        records = [rotate_record(r, rotation, s) for r, s in zip(records, structures)]
    preds, spread = model.predict(structures, batch_size=batch_size, return_spread=True, all_outputs=True)
    names = model.output_names
    constraints = [SymmetryConstraints.from_structure(s, model.ttype, symprec=METRIC_SYMPREC) for s in structures]
    bounds = model_error_bounds(model)
    labels, known = output_labels(records, names)
    result = None
    for k, name in enumerate(names):
        rows = np.flatnonzero(known[:, k])
        if not len(rows):
            continue
        chosen = [records[i] for i in rows]
        scored = evaluate_predictions(preds[rows, k], chosen, name, [structures[i] for i in rows],
                                      [constraints[i] for i in rows], labels[rows, k])
        scored.update(output=name, predictions=preds[rows, k], spread=spread[rows, k])
        if name in bounds:
            scored["error_bound"] = error_bound_report(scored["errors"], bounds[name].bounds(spread[rows, k]),
                                                       [r.crystal_system for r in chosen], bounds[name])
        if k == 0:
            result = {**scored, "parts": {}}
        else:
            result["parts"][name] = {**scored, "n": len(rows)}
    return result


#: The share of the screened high-k crystals counted is those predicted above this quantile of
#: the test split's polycrystalline averages.
HIGH_K_QUANTILE = 0.9


def polycrystalline_average(tensors: np.ndarray) -> np.ndarray:
    """(N,) tr(eps)/3 of (N, 3, 3) permittivities: the orientational average."""
    return np.trace(np.asarray(tensors), axis1=1, axis2=2) / 3.0


def high_k_screen(model, test_records, test_predictions: np.ndarray, screened_records, batch_size: int = 64) -> dict:
    """Where a dielectric model ranks high-k crystals (the ones a benchmark's magnitude screen
    keeps out of every split, e.g. mp-dfpt's split "screened") among the test crystals.

    Returns the share of the screened crystals whose predicted polycrystalline average exceeds
    the ``HIGH_K_QUANTILE`` quantile of the model's predicted averages on the test split
    (``above_predicted_quantile``: would a screen by the model's ranking flag them?) and of the
    DFT averages on the test split (``above_dft_quantile``), both thresholds, the DFT and
    predicted medians of the screened crystals' averages, and the Spearman correlation of
    predicted and DFT averages among them."""
    from scipy.stats import spearmanr

    predicted = polycrystalline_average(model.predict([r.structure for r in screened_records], batch_size=batch_size))
    dft = polycrystalline_average(np.stack([r.tensor for r in screened_records]))
    test_predicted = polycrystalline_average(test_predictions)
    test_dft = polycrystalline_average(np.stack([r.tensor for r in test_records]))
    by_model, by_dft = np.quantile(test_predicted, HIGH_K_QUANTILE), np.quantile(test_dft, HIGH_K_QUANTILE)
    return {"n": len(screened_records), "n_test": len(test_records), "quantile": HIGH_K_QUANTILE,
            "predicted_quantile": float(by_model), "dft_quantile": float(by_dft),
            "above_predicted_quantile": float(np.mean(predicted > by_model)),
            "above_dft_quantile": float(np.mean(predicted > by_dft)),
            "dft_median": float(np.median(dft)), "predicted_median": float(np.median(predicted)),
            "spearman": float(spearmanr(predicted, dft)[0]) if len(dft) > 2 else None}


def high_k_text(screen: dict) -> str:
    """A paragraph of ``high_k_screen``'s figures."""
    q = f"{100 * screen['quantile']:.0f}th percentile"
    return (f"High-k screen: of the {screen['n']} crystals the benchmark screens out (max|eps| >= 100), "
            f"{_pct(screen['above_predicted_quantile'])} are predicted above the {q} of the predicted "
            f"polycrystalline averages of the {screen['n_test']} test crystals ({screen['predicted_quantile']:.2f}), "
            f"{_pct(screen['above_dft_quantile'])} above the {q} of their DFT averages ({screen['dft_quantile']:.2f}); "
            f"median polycrystalline average DFT {screen['dft_median']:.1f}, predicted {screen['predicted_median']:.1f}; "
            f"Spearman rho of predicted and DFT averages among them "
            f"{'n/a' if screen['spearman'] is None else format(screen['spearman'], '.2f')}.\n")


def error_bound_report(errors: np.ndarray, bounds: np.ndarray, crystal_systems: list[str], bound) -> dict:
    """How a model's calibrated ErrorBound did on crystals with known errors: its settings and
    ``bound_agreement`` (coverage, mean bound, correlations) overall and per crystal system."""
    systems = np.asarray(crystal_systems)
    by = {s: bound_agreement(errors[systems == s], bounds[systems == s]) for s in CRYSTAL_SYSTEMS if np.any(systems == s)}
    return {"bound": bound.to_dict(), "overall": bound_agreement(errors, bounds), "by_crystal_system": by}


def error_bound_table(report: dict, unit: str = "") -> str:
    """A markdown table of ``error_bound_report``: coverage, mean bound and correlations."""
    b = report["bound"]
    head = (f"Error bound ({100 * b['coverage']:.0f}% target; calibrated on {b['n_calibration']} crystals"
            f"{' of ' + b['calibration'] if b['calibration'] else ''}):\n\n"
            f"| crystal system | n | coverage | mean bound{f' ({unit})' if unit else ''} | Pearson r | Spearman rho |\n"
            "|---|---|---|---|---|---|\n")

    def cell(x, fmt):
        return "n/a" if x is None else format(x, fmt)

    rows = []
    for name, a in [*report["by_crystal_system"].items(), ("overall", report["overall"])]:
        rows.append(f"| {name} | {a['n']} | {_pct(a['coverage'])} | {cell(a['mean_bound'], '.3f')} "
                    f"| {cell(a['pearson'], '.2f')} | {cell(a['spearman'], '.2f')} |")
    return head + "\n".join(rows) + "\n"


def trivial_tensor(train_records, shape: tuple[int, ...]) -> np.ndarray:
    """The constant prediction of a trivial predictor, shape ``shape``: the mean label of
    ``train_records``, or all zeros when they are None (the zero predictor)."""
    if train_records is None:
        return np.zeros(shape)
    return np.stack([r.tensor for r in train_records]).mean(0)


def compare_with(other: str, model, records, rotation: np.ndarray | None, errors: np.ndarray,
                 source: str = "mp", path=None, trust_pickle: bool = False) -> dict:
    """Paired comparison (``metrics.paired_difference``) of a model's per-crystal ``errors`` (n,)
    on ``records`` with another model file or a trivial predictor on the same crystals and frame:
    "zero" (every entry 0) or "train-mean" (the mean label of the task's train split)."""
    labels = np.stack([r.tensor if rotation is None else rotate_tensor(r.tensor, rotation) for r in records])
    if other in ("zero", "train-mean"):
        train = (load_dataset(model.config.task, source=source, split="train", path=path, trust_pickle=trust_pickle)
                 if other == "train-mean" else None)
        constant = trivial_tensor(train, labels.shape[1:])
        other_errors = np.linalg.norm((labels - constant).reshape(len(labels), -1), axis=1)
    else:
        other_model = load_model(other)
        if other_model.config.task != model.config.task:
            raise GmtnetError(f"{other} predicts {other_model.config.task}, not {model.config.task}")
        other_errors = evaluate_model(other_model, records, rotation=rotation)["errors"]
    return paired_difference(errors, other_errors)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def interval_text(interval) -> str:
    """"low-high" of an Fnorm interval, three decimals."""
    return f"{interval[0]:.3f}-{interval[1]:.3f}"


def metrics_table(result: dict, unit: str = "") -> str:
    """A markdown table: one row per crystal system and an overall row; elastic tensors also get
    the bulk and shear modulus MAEs and the predictions that are not positive definite."""
    o = result["overall"]
    elastic, bound = o.k_vrh_mae is not None, o.n_out_of_bound is not None
    extra = ((["K_VRH MAE (GPa)", "G_VRH MAE (GPa)"] if elastic else [])
             + ([result.get("bound_name", "out of bound")] if bound else []))
    header = (f"| crystal system | n | zero success | equality success | Fnorm{f' ({unit})' if unit else ''} "
              "| Fnorm 95% interval | EwT25 | EwT10 | EwT5 |" + "".join(f" {e} |" for e in extra)
              + "\n|---|---|---|---|---|---|---|---|---|" + "---|" * len(extra) + "\n")
    rows = []
    by = result["by_crystal_system"]
    for name in [*[s for s in CRYSTAL_SYSTEMS if s in by], "overall"]:
        m = result["overall"] if name == "overall" else by[name]
        row = (f"| {name} | {m.n} | {_pct(m.zero_success)} | {_pct(m.equality_success)} | {m.fnorm:.3f} "
               f"| {interval_text(m.fnorm_ci95)} | {_pct(m.ewt25)} | {_pct(m.ewt10)} | {_pct(m.ewt5)} |")
        if elastic:
            row += f" {m.k_vrh_mae:.2f} | {m.g_vrh_mae:.2f} |"
        if bound:
            row += f" {m.n_out_of_bound} ({_pct(m.out_of_bound)}) |"
        rows.append(row)
    return header + "\n".join(rows) + "\n"


def metrics_json(result: dict) -> dict:
    return {"overall": result["overall"].to_dict(),
            "by_crystal_system": {k: v.to_dict() for k, v in result["by_crystal_system"].items()}}


def axis_rotation(axis: str, degrees: float, reflect: bool = False) -> np.ndarray:
    """3x3 rotation by ``degrees`` about "x", "y" or "z"; times -1 (inversion) with ``reflect``."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"rotation axis must be x, y or z, got {axis!r}")
    from scipy.spatial.transform import Rotation

    r = Rotation.from_euler(axis, degrees, degrees=True).as_matrix()
    return -r if reflect else r
