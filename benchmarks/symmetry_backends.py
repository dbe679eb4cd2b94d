"""spglib against moyopy as gmtnet's symmetry backend: speed, agreement, and the shipped models'
test accuracy with each.

    python benchmarks/symmetry_backends.py          # needs `gmtnet data fetch` first

For every curated crystal of the three MP benchmark sets (train, val and test), on one thread:
the mean seconds of ``analyze_symmetry`` with each backend, and the crystals whose
point group differs (listed with their split). Then the shipped model of each task predicts the
test split through ``Predictor`` with each backend, and both are scored against the benchmark's
own forced patterns (spglib, symprec 1e-3): zero and equality success, Fnorm, and the largest
difference between the two backends' predictions.

Writes benchmarks/results/symmetry_backends.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

TASKS = ("dielectric", "piezoelectric", "elastic")
BACKENDS = ("spglib", "moyopy")


def agreement(task: str) -> dict:
    """Seconds per crystal of each backend and the crystals whose point groups differ."""
    from gmtnet.data import load_dataset
    from gmtnet.symmetry import analyze_symmetry

    records = list(load_dataset(task))
    found, seconds = {}, {}
    for backend in BACKENDS:
        t0 = time.perf_counter()
        found[backend] = [analyze_symmetry(r.structure, 1e-3, backend=backend) for r in records]
        seconds[backend] = (time.perf_counter() - t0) / len(records)
    differ = []
    for r, a, b in zip(records, found["spglib"], found["moyopy"]):
        if a.lattice_rotations.shape != b.lattice_rotations.shape or (a.lattice_rotations != b.lattice_rotations).any():
            differ.append({"material_id": r.material_id, "split": r.split,
                           "spglib": f"{a.international} ({a.spacegroup_number}), {a.point_group}",
                           "moyopy": f"{b.international} ({b.spacegroup_number}), {b.point_group}"})
    return {"task": task, "n_crystals": len(records), "seconds_per_crystal": seconds,
            "speedup": seconds["spglib"] / seconds["moyopy"], "differ": differ}


def accuracy(task: str) -> dict:
    """Test metrics of the shipped model with each backend (patterns: spglib, the definition)."""
    import numpy as np

    from gmtnet.data import load_dataset
    from gmtnet.prediction import Predictor, load_pretrained
    from gmtnet.training.evaluate import evaluate_predictions

    records = list(load_dataset(task, split="test"))
    model = load_pretrained(task)
    out, preds = {"task": task, "n_crystals": len(records)}, {}
    for backend in BACKENDS:
        results = Predictor(task, {task: model}, symmetry_backend=backend).predict([r.structure for r in records])
        bad = [r.error for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{task}: {len(bad)} test crystals failed with {backend}: {bad[0]}")
        preds[backend] = np.stack([r.tensors[task] for r in results])
        m = evaluate_predictions(preds[backend], records, task)["overall"]
        out[backend] = {"fnorm": m.fnorm, "zero_success": m.zero_success, "equality_success": m.equality_success,
                        "ewt25": m.ewt25}
    out["max_abs_prediction_difference"] = float(np.abs(preds["spglib"] - preds["moyopy"]).max())
    return out


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = ["# Symmetry backends: spglib and moyopy", "",
             f"{env['date']}; CPU {env['cpu']}; one thread; spglib {env['spglib']}, moyopy {env['moyopy']}; "
             "symprec 1e-3 A", "",
             "## Speed and agreement (every curated crystal of each set)", "",
             "| set | crystals | spglib ms/crystal | moyopy ms/crystal | speedup | point group differs |",
             "|---|---|---|---|---|---|"]
    for a in result["agreement"]:
        s = a["seconds_per_crystal"]
        lines.append(f"| {a['task']} | {a['n_crystals']} | {1e3 * s['spglib']:.3f} | {1e3 * s['moyopy']:.3f} | "
                     f"{a['speedup']:.1f}x | {len(a['differ'])} |")
    differ = [(a["task"], d) for a in result["agreement"] for d in a["differ"]]
    if differ:
        lines += ["", "Crystals whose point group differs:", "", "| set | material | split | spglib | moyopy |",
                  "|---|---|---|---|---|"]
        lines += [f"| {t} | {d['material_id']} | {d['split']} | {d['spglib']} | {d['moyopy']} |" for t, d in differ]
    if result.get("accuracy"):
        lines += ["", "## Shipped models on the test split, preprocessed with each backend", "",
                  "Forced patterns of the metrics: spglib (the benchmark's definition) in both rows.", "",
                  "| task | backend | zero success | equality success | Fnorm | EwT25 |", "|---|---|---|---|---|---|"]
        for acc in result["accuracy"]:
            for backend in BACKENDS:
                m = acc[backend]
                lines.append(f"| {acc['task']} | {backend} | {100 * m['zero_success']:.1f}% | "
                             f"{100 * m['equality_success']:.1f}% | {m['fnorm']:.4f} | {100 * m['ewt25']:.1f}% |")
        lines += ["", "Largest |difference| between the two backends' predictions: " + ", ".join(
            f"{acc['task']} {acc['max_abs_prediction_difference']:.3g}" for acc in result["accuracy"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--no-accuracy", action="store_true", help="skip the shipped models' test scores")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import torch

    from gmtnet.utils.environment import command_line, environment, write_result

    torch.set_num_threads(1)
    tasks = [t for t in args.tasks.split(",") if t]
    result = {"benchmark": "symmetry_backends", "command": command_line(), "environment": environment(),
              "agreement": [], "accuracy": []}
    for task in tasks:
        result["agreement"].append(agreement(task))
        print(json.dumps(result["agreement"][-1]), flush=True)
    if not args.no_accuracy:
        for task in tasks:
            result["accuracy"].append(accuracy(task))
            print(json.dumps(result["accuracy"][-1]), flush=True)
    print(write_result(args.out, "symmetry_backends", result, markdown(result)))


if __name__ == "__main__":
    main()
