"""Graph and symmetry preprocessing throughput on the dielectric training set, one core.

    OMP_NUM_THREADS=1 python benchmarks/preprocessing.py [--limit N]

Writes benchmarks/results/preprocessing.json and .md. Needs `gmtnet data fetch` first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from _env import environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N training crystals")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    from gmtnet.data import load_dataset
    from gmtnet.graph import build_graph
    from gmtnet.symmetry import analyze_symmetry
    from gmtnet.utils.io import atomic_write_text

    structures = [r.structure for r in load_dataset("dielectric", split="train")][: args.limit]
    t0 = time.perf_counter()
    graphs = [build_graph(s, symprec=None) for s in structures]
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in structures:
        analyze_symmetry(s, 1e-3)
    t_sym = time.perf_counter() - t0
    n = len(structures)
    result = {
        "benchmark": "preprocessing",
        "dataset": "mp dielectric train",
        "n_crystals": n,
        "mean_atoms": sum(len(s) for s in structures) / n,
        "mean_edges": sum(g.n_edges for g in graphs) / n,
        "graph_s_per_crystal": t_graph / n,
        "symmetry_s_per_crystal": t_sym / n,
        "total_s_per_crystal": (t_graph + t_sym) / n,
        "crystals_per_s": n / (t_graph + t_sym),
        "environment": environment(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "preprocessing.json", json.dumps(result, indent=2) + "\n")
    md = (
        f"# Preprocessing throughput ({result['environment']['date']}, {result['environment']['cpu']}, 1 thread)\n\n"
        f"| crystals | mean atoms | mean edges | graph s/crystal | symmetry s/crystal | total s/crystal | crystals/s |\n"
        f"|---|---|---|---|---|---|---|\n"
        f"| {n} | {result['mean_atoms']:.1f} | {result['mean_edges']:.0f} | {result['graph_s_per_crystal']:.5f} "
        f"| {result['symmetry_s_per_crystal']:.5f} | {result['total_s_per_crystal']:.5f} | {result['crystals_per_s']:.1f} |\n"
    )
    atomic_write_text(args.out / "preprocessing.md", md)
    print(md)


if __name__ == "__main__":
    main()
