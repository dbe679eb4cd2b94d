"""Error ratio of forced-zero entries with every symmetry-enforcement step off (paper Table 8),
on exactly ideal crystals of all seven crystal systems, for the three tensor types.

    python benchmarks/symmetry_without_enforcement.py [--dtype float64|float32]

ratio = sum |forced-zero entries| / sum |other entries| of the untrained default network's
prediction; also the largest relative violation of a forced equality. Writes
benchmarks/results/symmetry_without_enforcement_<dtype>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gmtnet.testing import ideal_crystals
from gmtnet.utils.environment import command_line, environment, record_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import numpy as np

    from gmtnet.model import build_model
    from gmtnet.symmetry import SymmetryConstraints, analyze_symmetry, symmetrize_structure
    from gmtnet.tensors import TENSOR_TYPES
    from gmtnet.utils.io import atomic_write_text

    names = ["rocksalt_NaCl", "zincblende_GaAs", "wurtzite_ZnO", "rutile_TiO2", "alpha_quartz",
             "orthorhombic_mm2", "monoclinic_2", "triclinic_1"]
    crystals = {n: symmetrize_structure(s) for n, s in ideal_crystals().items() if n in names}
    rows = []
    for task, ttype in TENSOR_TYPES.items():
        model = build_model(task, symmetrize_features=False, project_output=False, snap_output=False,
                            dtype=args.dtype)
        preds = model.predict([crystals[n] for n in names])
        for name, t in zip(names, preds):
            c = SymmetryConstraints.from_structure(crystals[name], ttype)
            mask = c.zero_mask()
            other = np.abs(t[~mask]).sum()
            ratio = float(np.abs(t[mask]).sum() / other) if mask.any() and other > 0 else None
            big = np.abs(t).max()
            eq = max((abs(t[b] - s * t[a]) / big for a, b, s in c.equalities), default=None) if big > 0 else None
            rows.append({"task": task, "crystal": name, "system": analyze_symmetry(crystals[name]).crystal_system,
                         "point_group": analyze_symmetry(crystals[name]).point_group,
                         "zero_error_ratio": ratio, "all_zero_max_abs": float(big) if not (~mask).any() else None,
                         "max_equality_violation": None if eq is None else float(eq)})
    result = {"benchmark": "symmetry_without_enforcement", "dtype": args.dtype, "rows": rows,
              "command": command_line(), "environment": environment()}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"symmetry_without_enforcement_{args.dtype}"
    atomic_write_text(args.out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    fmt = lambda x: "-" if x is None else f"{x:.1e}"  # noqa: E731
    lines = [f"# Symmetry with enforcement off, ideal crystals, untrained default models ({args.dtype})", "",
             "| task | crystal | system | point group | zero error ratio | max equality violation (rel.) | max abs if all forced zero |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['crystal']} | {r['system']} | {r['point_group']} | {fmt(r['zero_error_ratio'])} "
                     f"| {fmt(r['max_equality_violation'])} | {fmt(r['all_zero_max_abs'])} |")
    lines += ["", *record_lines(result["environment"], result["command"])]
    atomic_write_text(args.out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
