"""Dataset statistics as in the paper's Table 1, per split and per crystal system."""

from __future__ import annotations

from collections import Counter

import numpy as np

from gmtnet.data.records import TensorDataset
from gmtnet.data.splits import SPLITS
from gmtnet.symmetry import CRYSTAL_SYSTEMS


def summarize(dataset: TensorDataset) -> dict:
    """Counts per split and crystal system, Frobenius-norm statistics, curation removals."""
    norms = np.array([np.linalg.norm(r.tensor) for r in dataset]) if len(dataset) else np.zeros(0)
    splits = Counter(r.split or "none" for r in dataset)
    systems = Counter(r.crystal_system for r in dataset)
    by_system_split = {
        cs: {s: sum(1 for r in dataset if r.crystal_system == cs and r.split == s) for s in SPLITS}
        for cs in CRYSTAL_SYSTEMS
    }
    elements = {el.symbol for r in dataset for el in r.structure.composition.elements}
    part_names = list(dict.fromkeys(name for r in dataset if r.parts for name in r.parts))
    parts = {}
    for name in part_names:
        part_norms = np.array([np.linalg.norm(r.parts[name]) for r in dataset if r.parts is not None])
        parts[name] = {"n": len(part_norms), "fnorm_mean": float(part_norms.mean()),
                       "fnorm_std": float(part_norms.std(ddof=1)) if part_norms.size > 1 else float("nan")}
    report = dataset.report
    return {
        "task": dataset.task,
        "source": dataset.source,
        "n_records": len(dataset),
        "splits": {s: splits.get(s, 0) for s in (*SPLITS, "none") if splits.get(s, 0) or s != "none"},
        "crystal_systems": {cs: systems.get(cs, 0) for cs in CRYSTAL_SYSTEMS},
        "crystal_systems_by_split": by_system_split,
        "fnorm_mean": float(norms.mean()) if norms.size else float("nan"),
        "fnorm_std": float(norms.std(ddof=1)) if norms.size > 1 else float("nan"),
        "n_elements": len(elements),
        "parts": parts,
        "curation": None if report is None else {
            "n_input": report.n_input, "n_kept": report.n_kept, "removed": dict(report.removed),
            "kept_with_warning": len(report.warnings),
        },
    }


def format_summary(summary: dict, unit: str = "") -> str:
    """Plain-text rendering of ``summarize``'s result."""
    s = summary
    lines = [f"{s['task']} ({s['source']}): {s['n_records']:,} records"]
    lines.append("  splits: " + " / ".join(f"{k} {v}" for k, v in s["splits"].items()))
    u = f" {unit}" if unit else ""
    lines.append(f"  Fnorm of labels: mean {s['fnorm_mean']:.4g}{u}, std {s['fnorm_std']:.4g}{u}")
    for name, p in s.get("parts", {}).items():
        lines.append(f"  {name}: {p['n']:,} records have it; Fnorm mean {p['fnorm_mean']:.4g}{u}, std {p['fnorm_std']:.4g}{u}")
    lines.append(f"  elements: {s['n_elements']}")
    lines.append("  crystal system     total  train    val   test")
    for cs, total in s["crystal_systems"].items():
        by = s["crystal_systems_by_split"][cs]
        lines.append(f"  {cs:<16} {total:>7} {by['train']:>6} {by['val']:>6} {by['test']:>6}")
    cur = s.get("curation")
    if cur:
        removed = ", ".join(f"{n} {rule}" for rule, n in sorted(cur["removed"].items())) or "none"
        warned = f"; {cur['kept_with_warning']} kept with a warning (--issues)" if cur.get("kept_with_warning") else ""
        lines.append(f"  curation: {cur['n_kept']} of {cur['n_input']} kept; removed by rule: {removed}{warned}")
    return "\n".join(lines)
