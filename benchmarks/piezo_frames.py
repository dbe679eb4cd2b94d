"""Which frame are the piezoelectric labels in? The curated structure (pymatgen's conventional
standard cell of the POSCAR, the benchmark's rule) against that cell rotated into the IEEE frame
as this pymatgen computes it (``Tensor.get_ieee_rotation``), by the curation's own frame check.

    python benchmarks/piezo_frames.py [--write-ieee-root DIR]

For every raw record of piezoelectric_tensor.csv and each of the two structures: does the label
pass the frame check (max over the point group of max|R.T - T| / max|T| < 1e-2)? Counted by point
group. For the kept records whose label passes in both frames, the two pairings can still differ:
the rotation between the frames may map the point group onto itself without being in it (for 3m a
60 degree turn about z, which flips the sign of e22), and then symmetry cannot say which pairing
is right. Those are counted too.

With --write-ieee-root DIR, a curated piezoelectric dataset with the same ids and labels, each
structure replaced by its IEEE-rotated cell wherever the label passes there, is written under DIR
(use it with GMTNET_DATA=DIR to train on that pairing). Writes benchmarks/results/piezo-frames.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter, defaultdict
from pathlib import Path


from gmtnet.utils.environment import command_line, environment, record_lines

FRAME_TOL = 1e-2


def ieee_cell(conv):
    """``conv`` rotated by pymatgen's IEEE rotation of it (no refinement), and the rotation."""
    import numpy as np
    from pymatgen.core.operations import SymmOp
    from pymatgen.core.tensors import Tensor

    rotation = np.asarray(Tensor(np.zeros((3, 3))).get_ieee_rotation(conv, refine_rotation=False))
    rotated = conv.copy()
    rotated.apply_operation(SymmOp.from_rotation_and_translation(rotation, [0, 0, 0]))
    return rotated, rotation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-ieee-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd

    from gmtnet.data import load_dataset
    from gmtnet.data.curation import CurationConfig, CurationError, curate_record
    from gmtnet.data.sources import mp
    from gmtnet.tensors import get_tensor_type, rotate_tensor
    from gmtnet.utils.io import atomic_write_text, read_json_gz, write_json_gz

    ttype = get_tensor_type("piezoelectric")
    config = CurationConfig(symprec=1e-3, frame_tol=FRAME_TOL, max_abs=None)  # the benchmark's rules
    kept = {r.material_id: r for r in load_dataset("piezoelectric")}
    csv_path = mp.raw_dir() / "piezoelectric_tensor.csv"
    table = pd.read_csv(csv_path, comment="#", usecols=["material_id", "point_group"])
    point_group = dict(zip(table.material_id.astype(str), table.point_group.astype(str)))
    by_group: dict[str, Counter] = defaultdict(Counter)
    ambiguous, swapped = Counter(), {}
    for raw in mp.raw_records("piezoelectric", csv_path):  # structure: the conventional standard cell
        label, conv = raw.load_tensor(), raw.load_structure()
        rotated, rotation = ieee_cell(conv)
        curated = []  # (label, symmetry) where the raw label passes the curation in that cell, else None
        for cell in (conv, rotated):
            try:
                curated.append(curate_record(cell, label, ttype, config))
            except CurationError:
                curated.append(None)
        key = ("conv" if curated[0] else "-") + "/" + ("ieee" if curated[1] else "-")
        by_group[point_group[raw.record_id]][key] += 1
        record = kept.get(raw.record_id)
        if record is not None and curated[1]:
            new_label = curated[1][0]
            # the kept label carried into the rotated cell against the label the rotated cell gets
            carried = rotate_tensor(record.tensor, rotation, ttype)
            differs = np.abs(carried - new_label).max() > 1e-3 * max(np.abs(new_label).max(), 1e-12)
            ambiguous["kept, passes in both frames, pairings differ" if differs else "kept, passes in both frames, same pairing"] += 1
            if differs:
                swapped[raw.record_id] = (rotated, new_label)
        elif record is not None:
            ambiguous["kept, fails in the IEEE frame"] += 1

    totals = Counter()
    for c in by_group.values():
        totals.update(c)
    keys = ["conv/ieee", "conv/-", "-/ieee", "-/-"]
    lines = ["# Piezoelectric labels: conventional-cell frame against pymatgen's IEEE frame", "",
             "`python benchmarks/piezo_frames.py`: raw records of piezoelectric_tensor.csv (matminer 0.3.9) whose",
             f"label passes the curation's frame check (tolerance {FRAME_TOL:g}) with the conventional standard",
             "cell (conv, the benchmark's rule) and with that cell rotated into pymatgen's IEEE frame (ieee).", "",
             "| point group | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for group in sorted(by_group):
        lines.append(f"| {group} | " + " | ".join(str(by_group[group][k]) for k in keys) + " |")
    lines.append("| all | " + " | ".join(str(totals[k]) for k in keys) + " |")
    lines += ["", "Of the kept (curated) records:", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(ambiguous.items())]
    env = environment()
    import pymatgen.core

    lines += ["", *record_lines(env, command_line()), f"- pymatgen {pymatgen.core.__version__}"]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "piezo-frames.md", "\n".join(lines) + "\n")
    atomic_write_text(args.out / "piezo-frames.json", json.dumps(
        {"by_point_group": {g: dict(c) for g, c in by_group.items()}, "kept": dict(ambiguous), "command": command_line(),
         "environment": env}, indent=1))
    print("\n".join(lines))

    if args.write_ieee_root:
        source = read_json_gz(mp.processed_path("piezoelectric", 1e-3))
        for d in source["records"]:
            if d["material_id"] in swapped:
                structure, label = swapped[d["material_id"]]
                d["structure"], d["tensor"] = structure.as_dict(), label.tolist()
        path = write_json_gz(mp.processed_path("piezoelectric", 1e-3, args.write_ieee_root), source)
        print(f"IEEE-paired dataset ({len(swapped)} structures replaced): {path}")


if __name__ == "__main__":
    main()
