"""Write the offline test fixtures: small real subsets of the benchmark data.

    python scripts/make_fixtures.py mp        # matminer CSVs (run `gmtnet data fetch` first)
    python scripts/make_fixtures.py mp2026    # MP-2026 archives (from the committed archives)

mp: per task, up to 3 kept records per crystal system, plus up to 2 rejected by each curation
rule; only the columns gmtnet reads are kept, with matminer's leading '#' reference line.

mp2026: per task, the same choice (the elastic singular stiffnesses both kept with a warning and
removed), written as archives of the full archives' layout, with ``SHA256SUMS`` and
``expected.json`` (each fixture id's split, or the rule that removed it, under full curation).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from gmtnet.data.sources import mp, mp2026
from gmtnet.symmetry import CRYSTAL_SYSTEMS

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def choose(dataset, per_system: int = 3, per_rule: int = 2) -> list[str]:
    """Ids of up to ``per_system`` kept records per crystal system and ``per_rule`` removed per
    rule (removed singular and indefinite stiffnesses counted apart), and every warned record's
    first ``per_rule``."""
    chosen = []
    for system in CRYSTAL_SYSTEMS:
        chosen += [r.material_id for r in dataset if r.crystal_system == system][:per_system]
    by_kind: dict[str, list[str]] = {}
    for issue in dataset.report.issues:
        kind = issue.rule + (" (singular)" if "singular" in issue.message else "")
        by_kind.setdefault(kind, []).append(issue.record_id)
    for ids in by_kind.values():
        chosen += ids[:per_rule]
    chosen += [w.record_id for w in dataset.report.warnings][:per_rule]
    return chosen


def write_mp(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for task, (csv_name, column) in mp.CSV_FILES.items():
        chosen = choose(mp.load(task))
        src = mp.raw_dir() / csv_name
        first = src.read_text().splitlines()[0]
        parts = list(mp.PART_COLUMNS.get(task, {}).values())
        frame = pd.read_csv(src, comment="#", usecols=["material_id", "poscar", column, *parts])
        frame = frame[frame.material_id.isin(chosen)]
        (out / csv_name).write_text(first + "\n" + frame.to_csv(index=False))
        print(task, len(frame), "rows")


def write_mp2026(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sums, expected = [], {}
    for task, archive in mp2026.ARCHIVES.items():
        dataset = mp2026.load(task, progress=True)
        chosen = set(choose(dataset))
        arrays = mp2026.read_archive(task)
        ids = [str(i) for i in arrays["ids"]]
        rows = [i for i, mid in enumerate(ids) if mid in chosen]
        offsets = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
        atoms = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in rows])
        subset = {name: arrays[name][rows] for name in ("ids", "n_atoms", "cells", task)}
        subset.update(z=arrays["z"][atoms], positions=arrays["positions"][atoms])
        path = out / archive.file
        np.savez_compressed(path, **subset)
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {archive.file}")
        fate = {r.material_id: r.split for r in dataset}
        fate.update({i.record_id: f"removed: {i.rule}" for i in dataset.report.issues})
        expected[task] = {ids[i]: fate[ids[i]] for i in rows}
        print(task, len(rows), "rows")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "mp"
    if which == "mp":
        write_mp(FIXTURES / "mp" / "raw")
    elif which == "mp2026":
        write_mp2026(FIXTURES / "mp2026")
    else:
        sys.exit(f"unknown fixture set {which!r}: expected mp or mp2026")
