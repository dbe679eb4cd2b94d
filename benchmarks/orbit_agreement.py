"""How far evaluation at one atom per orbit is from evaluating every atom, on real data.

    python benchmarks/orbit_agreement.py     # needs `gmtnet data fetch`

For each task: the shipped model's test-split predictions (snapped, as `gmtnet evaluate` makes
them) computed both ways, their test metrics, the per-crystal relative Frobenius difference
between the two, how many crystals had an orbit map (the rest run atom by atom either way), and
the edges each way: every edge, the edges into representatives, and one per edge class under the
representatives' site groups (what the orbit evaluation computes).
Writes benchmarks/results/orbit_agreement.{json,md}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


TASKS = ("dielectric", "piezoelectric", "elastic")


def edges_into_representatives(graph, one_per_class: bool = False) -> int:
    """Edges an orbit evaluation of the graph computes (every edge without an orbit map)."""
    import numpy as np

    if graph.orbit_rep is None:
        return graph.n_edges
    into = graph.orbit_rep[graph.edge_dst] == graph.edge_dst
    return int(np.sum(into & (graph.edge_multiplicity > 0))) if one_per_class else int(np.sum(into))


def main() -> None:
    import numpy as np
    import torch

    from gmtnet.utils.environment import command_line, environment, record_lines
    from gmtnet.data import load_dataset
    from gmtnet.prediction.pretrained import load_pretrained
    from gmtnet.training.evaluate import evaluate_predictions
    from gmtnet.utils.io import atomic_write_text

    torch.set_num_threads(1)
    rows = []
    for task in TASKS:
        model = load_pretrained(task)
        records = load_dataset(task, split="test")
        structures = [r.structure for r in records]
        graphs = [model.graph(s) for s in structures]
        row = {"task": task, "n_crystals": len(graphs),
               "n_mapped": sum(g.orbit_rep is not None for g in graphs),
               "atoms": sum(g.n_atoms for g in graphs),
               "representatives": sum(len(set(g.orbit_rep)) if g.orbit_rep is not None else g.n_atoms for g in graphs),
               "edges": sum(g.n_edges for g in graphs),
               "edges_into_representatives": sum(edges_into_representatives(g) for g in graphs),
               "edge_classes": sum(edges_into_representatives(g, one_per_class=True) for g in graphs)}
        preds = {}
        for orbits in (False, True):
            t0 = time.perf_counter()
            preds[orbits] = model.predict_graphs(graphs, orbits=orbits)
            m = evaluate_predictions(preds[orbits], records, task, structures)["overall"]
            key = "orbits" if orbits else "all_atoms"
            row[key] = {"fnorm": m.fnorm, "ewt25": m.ewt25, "ewt10": m.ewt10, "ewt5": m.ewt5,
                        "zero_success": m.zero_success, "equality_success": m.equality_success,
                        "seconds": time.perf_counter() - t0}
        a, b = (preds[o].reshape(len(graphs), -1) for o in (False, True))
        diff, norm = np.linalg.norm(a - b, axis=1), np.linalg.norm(a, axis=1)
        rel = diff / np.maximum(norm, 1e-30)
        row.update(max_relative_difference=float(rel.max()), median_relative_difference=float(np.median(rel)),
                   max_absolute_difference=float(diff.max()), norm_at_max_relative=float(norm[rel.argmax()]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    env = environment()
    lines = ["# One atom per orbit against every atom: the shipped models on the MP test splits", "",
             f"{env.get('date', '')}; {env.get('cpu', '')}; torch {env.get('torch', '')}; one thread.", "",
             "| task | crystals (with an orbit map) | atoms / representatives | edges / into representatives / "
             "edge classes | Fnorm, every atom | Fnorm, one per orbit "
             "| EwT25 both ways | zero / equality success both ways | max / median relative difference per crystal "
             "(Frobenius norm of that crystal's prediction) | max absolute difference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, o = r["all_atoms"], r["orbits"]
        same = lambda k: f"{100 * a[k]:.2f}%" if a[k] == o[k] else f"{100 * a[k]:.2f}% / {100 * o[k]:.2f}%"  # noqa: E731
        lines.append(f"| {r['task']} | {r['n_crystals']} ({r['n_mapped']}) | {r['atoms']} / {r['representatives']} | "
                     f"{r['edges']} / {r['edges_into_representatives']} / {r['edge_classes']} | "
                     f"{a['fnorm']:.6f} | {o['fnorm']:.6f} | {same('ewt25')} | "
                     f"{same('zero_success')} / {same('equality_success')} | "
                     f"{r['max_relative_difference']:.2e} / {r['median_relative_difference']:.1e} "
                     f"({r['norm_at_max_relative']:.3g}) | {r['max_absolute_difference']:.1e} |")
    out = Path(__file__).parent / "results"
    lines += ["", *record_lines(env, command_line())]
    atomic_write_text(out / "orbit_agreement.json", json.dumps({"command": command_line(), "environment": env, "rows": rows},
                                                               indent=1) + "\n")
    atomic_write_text(out / "orbit_agreement.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
