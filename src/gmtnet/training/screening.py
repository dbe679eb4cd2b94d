"""Screening metrics of a piezoelectric model: does it find the strong piezoelectrics, with the
right size and direction, and does it beat printing zero where it matters?

For predictions P and DFT labels Y (N, 3, 3, 3) in C/m^2:

- ROC AUC and average precision of the predicted max|e_ij| (Voigt) as a score for "strong":
  DFT max|e_ij| > ``STRONG`` (0.5 C/m^2, JARVIS's screening threshold), with the base rate;
- Spearman rank correlation of predicted and DFT max|e_ij|;
- over labels with ||Y||_F > ``MAGNITUDE_FLOOR``: the median |ln(||P||_F / ||Y||_F)| (how many
  e-folds the size is off) and the median cosine <P, Y> / (||P|| ||Y||) (the direction);
- Fnorm on the bulk (labels with ||Y||_F at most the ``TAIL_QUANTILE`` quantile of the crystals
  scored) and on the tail (the rest), each with the predictor of zero's Fnorm and the paired
  bootstrap interval of the difference (``metrics.paired_difference``);
- false flags: predicted max|e_ij| > ``FALSE_FLAG`` on centrosymmetric crystals, whose
  piezoelectric tensor vanishes by symmetry (``false_flags``).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata, spearmanr

from gmtnet.tensors import PIEZOELECTRIC, to_voigt
from gmtnet.training.metrics import CRYSTAL_SYSTEMS, paired_difference

STRONG = 0.5
MAGNITUDE_FLOOR = 0.05
TAIL_QUANTILE = 0.95
FALSE_FLAG = 0.01


def max_abs_voigt(tensors: np.ndarray) -> np.ndarray:
    """(N,) largest |e_ij| of (N, 3, 3, 3) piezoelectric tensors in Voigt form (C/m^2)."""
    return np.array([np.abs(to_voigt(t, PIEZOELECTRIC)).max() for t in tensors]) if len(tensors) else np.zeros(0)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for the boolean ``positive``: the probability that
    a random positive scores above a random negative (ties count one half; the Mann-Whitney
    statistic). None without both classes."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Average precision of ``scores`` for ``positive``: the mean, over the positives, of the
    precision among all crystals scored at least as high (ties ranked together). None without a
    positive."""
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        return None
    scores = np.asarray(scores, dtype=np.float64)
    at_least = scores[None, :] >= scores[positive][:, None]  # [n_pos, N]
    precision = (at_least & positive[None, :]).sum(axis=1) / at_least.sum(axis=1)
    return float(precision.mean())


def _median_or_none(values: np.ndarray) -> float | None:
    return float(np.median(values)) if len(values) else None


def screening_metrics(preds: np.ndarray, labels: np.ndarray, tail_threshold: float | None = None) -> dict:
    """The module's metrics for one group of crystals. ``tail_threshold``: the label norm above
    which a crystal is in the tail (default: the ``TAIL_QUANTILE`` quantile of these labels)."""
    preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    n = len(labels)
    p_norm = np.linalg.norm(preds.reshape(n, -1), axis=1)
    y_norm = np.linalg.norm(labels.reshape(n, -1), axis=1)
    p_max, y_max = max_abs_voigt(preds), max_abs_voigt(labels)
    strong = y_max > STRONG
    sized = y_norm > MAGNITUDE_FLOOR
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.abs(np.log(p_norm[sized] / y_norm[sized]))
        cosine = np.sum((preds * labels).reshape(n, -1)[sized], axis=1) / (p_norm[sized] * y_norm[sized])
    cosine = np.where(np.isfinite(cosine), cosine, 0.0)  # a zero prediction points nowhere
    threshold = float(np.quantile(y_norm, TAIL_QUANTILE)) if tail_threshold is None and n else tail_threshold
    errors = np.linalg.norm((preds - labels).reshape(n, -1), axis=1)

    def against_zero(rows: np.ndarray) -> dict | None:
        if not rows.any():
            return None
        comparison = paired_difference(errors[rows], y_norm[rows])
        return {"n": int(rows.sum()), "fnorm": float(errors[rows].mean()), "zero_fnorm": float(y_norm[rows].mean()),
                "difference": comparison["difference"], "ci95": comparison["ci95"], "verdict": comparison["verdict"]}

    return {
        "n": n, "n_strong": int(strong.sum()), "base_rate": float(strong.mean()) if n else None,
        "roc_auc": roc_auc(p_max, strong), "average_precision": average_precision(p_max, strong),
        "spearman": float(spearmanr(p_max, y_max)[0]) if n > 2 and np.ptp(p_max) > 0 and np.ptp(y_max) > 0 else None,
        "n_sized": int(sized.sum()), "median_abs_log_ratio": _median_or_none(log_ratio),
        "median_cosine": _median_or_none(cosine), "tail_threshold": threshold,
        "bulk": against_zero(y_norm <= threshold), "tail": against_zero(y_norm > threshold),
        "all": against_zero(np.ones(n, dtype=bool)),
    }


def screening_report(preds: np.ndarray, labels: np.ndarray, crystal_systems: list[str]) -> dict:
    """``screening_metrics`` overall and per crystal system (the tail threshold is the overall
    one, so a crystal is in the same part everywhere)."""
    overall = screening_metrics(preds, labels)
    systems = np.asarray(crystal_systems)
    by = {s: screening_metrics(preds[systems == s], labels[systems == s], overall["tail_threshold"])
          for s in CRYSTAL_SYSTEMS if np.any(systems == s)}
    return {"overall": overall, "by_crystal_system": by}


def false_flags(model, structures, batch_size: int = 64) -> dict:
    """How many centrosymmetric crystals among ``structures`` (their point group holds the
    inversion, found at symprec 1e-3) get a predicted max|e_ij| above ``FALSE_FLAG``."""
    from gmtnet.symmetry import crystal_symmetry

    central = [s for s in structures
               if any(np.allclose(r, -np.eye(3), atol=1e-6) for r in crystal_symmetry(s, 1e-3)[1].rotations)]
    flagged = max_abs_voigt(model.predict(central, batch_size=batch_size)) > FALSE_FLAG if central else np.zeros(0, bool)
    return {"n_centrosymmetric": len(central), "false_flags": int(flagged.sum()), "threshold": FALSE_FLAG}


def _cell(x, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def screening_table(report: dict) -> str:
    """A markdown table of ``screening_report``, one row per crystal system and an overall row."""
    head = (f"Screening (strong: DFT max|e_ij| > {STRONG:g} C/m^2; size and direction over labels with "
            f"||Y|| > {MAGNITUDE_FLOOR:g}; tail: ||Y|| > {report['overall']['tail_threshold']:.3f}, the "
            f"{100 * TAIL_QUANTILE:.0f}th percentile):\n\n"
            "| crystal system | n | strong | ROC AUC | AP | Spearman | median abs ln(P/Y) | median cos | "
            "bulk Fnorm (zero) | tail Fnorm (zero) |\n|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, m in [*report["by_crystal_system"].items(), ("overall", report["overall"])]:
        parts = [f"{m[k]['fnorm']:.3f} ({m[k]['zero_fnorm']:.3f})" if m[k] else "n/a" for k in ("bulk", "tail")]
        rows.append(f"| {name} | {m['n']} | {m['n_strong']} | {_cell(m['roc_auc'], '.3f')} "
                    f"| {_cell(m['average_precision'], '.3f')} | {_cell(m['spearman'], '.3f')} "
                    f"| {_cell(m['median_abs_log_ratio'], '.3f')} | {_cell(m['median_cosine'], '.3f')} "
                    f"| {parts[0]} | {parts[1]} |")
    text = head + "\n".join(rows) + "\n"
    o = report["overall"]
    for key, what in (("bulk", "the bulk"), ("tail", "the tail"), ("all", "all crystals")):
        if o[key]:
            text += (f"\nAgainst zero on {what} ({o[key]['n']}): Fnorm difference {o[key]['difference']:+.3f} C/m^2, "
                     f"95% interval {o[key]['ci95'][0]:+.3f} to {o[key]['ci95'][1]:+.3f}: {o[key]['verdict']}.")
    return text + "\n"


__all__ = ["FALSE_FLAG", "MAGNITUDE_FLOOR", "STRONG", "TAIL_QUANTILE", "average_precision", "false_flags",
           "max_abs_voigt", "roc_auc", "screening_metrics", "screening_report", "screening_table"]
