"""Write the offline test fixtures: small subsets of the matminer CSVs (run after `gmtnet data fetch`).

Per task: up to 3 kept records per crystal system, plus up to 2 rejected by each curation rule.
Only the columns gmtnet reads are kept, with matminer's leading '#' reference line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from gmtnet.data.sources import mp
from gmtnet.symmetry import CRYSTAL_SYSTEMS


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for task, (csv_name, column) in mp.CSV_FILES.items():
        dataset = mp.load(task)
        chosen = []
        for system in CRYSTAL_SYSTEMS:
            chosen += [r.material_id for r in dataset if r.crystal_system == system][:3]
        by_rule: dict[str, list[str]] = {}
        for issue in dataset.report.issues:
            by_rule.setdefault(issue.rule, []).append(issue.record_id)
        for ids in by_rule.values():
            chosen += ids[:2]
        src = mp.raw_dir() / csv_name
        first = src.read_text().splitlines()[0]
        frame = pd.read_csv(src, comment="#", usecols=["material_id", "poscar", column])
        frame = frame[frame.material_id.isin(chosen)]
        (out / csv_name).write_text(first + "\n" + frame.to_csv(index=False))
        print(task, len(frame), "rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/fixtures/mp/raw"))
