"""Prediction throughput of the shipped models against those of another commit, side by side.

    python benchmarks/shipped_throughput.py --compare COMMIT     # needs `gmtnet data fetch` first

For each task, the model file shipped at COMMIT (read with `git show`) and the one in the working
tree predict the matminer benchmark's test split (``predict_graphs``, batch 64, one atom per
orbit, from each model's own graphs without cached point-group data), one thread, alternating
in every round (old, new, then new, old, ...; --rounds, medians). Two figures per model: one
network (an ensemble's first member) and the whole file (every member, as ``gmtnet predict``
runs it). Writes benchmarks/results/shipped_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from paired_ab import alternate  # noqa: E402
from speed import TASKS, _fresh  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def shipped_file(commit: str, task: str, folder: Path) -> Path:
    """The model file of ``task`` shipped at ``commit``, written into ``folder``."""
    blob = subprocess.run(["git", "show", f"{commit}:src/gmtnet/pretrained/{task}.pt"], cwd=ROOT,
                          check=True, capture_output=True).stdout
    path = folder / f"{task}-{commit}.pt"
    path.write_bytes(blob)
    return path


def single_network(model):
    """An ensemble's first member, or the model itself."""
    return model.members[0] if hasattr(model, "members") else model


def measure(task: str, old_path: Path, new_path: Path, rounds: int) -> dict:
    from gmtnet.data import load_dataset
    from gmtnet.model import load_model

    structures = [r.structure for r in load_dataset(task, split="test")]
    row = {"task": task, "n": len(structures)}
    models = {"old": load_model(old_path), "new": load_model(new_path)}
    graphs = {name: [m.graph(s) for s in structures] for name, m in models.items()}
    for scope, pick in (("network", single_network), ("file", lambda m: m)):
        runs = {name: (lambda _r, m=pick(models[name]), g=graphs[name]: m.predict_graphs(_fresh(g), batch_size=64))
                for name in ("old", "new")}
        for fn in runs.values():
            fn(0)  # warm-up
        times, ratios = alternate(runs, rounds)
        row[scope] = {"old_crystals_per_s": len(structures) / statistics.median(times["old"]),
                      "new_crystals_per_s": len(structures) / statistics.median(times["new"]),
                      "new_over_old": statistics.median(ratios)}  # old time / new time: speed ratio
        row[scope]["members"] = {name: len(getattr(pick(m), "members", [m])) for name, m in models.items()}
        print(json.dumps({"task": task, scope: row[scope]}), flush=True)
    return row


def markdown(result: dict) -> str:
    lines = ["# Shipped models: prediction throughput against an earlier commit's", "",
             f"matminer test split, batch 64, one atom per orbit, one thread, {result['rounds']} alternating "
             f"rounds (medians); old = the models shipped at {result['compare']}, new = the working tree's.", "",
             "| task | crystals | scope | networks old / new | old crystals/s | new crystals/s | speed new / old |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        for scope in ("network", "file"):
            r = row[scope]
            lines.append(f"| {row['task']} | {row['n']} | {'one network' if scope == 'network' else 'whole file'} "
                         f"| {r['members']['old']} / {r['members']['new']} | {r['old_crystals_per_s']:.0f} "
                         f"| {r['new_crystals_per_s']:.0f} | {r['new_over_old']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", required=True, help="git commit whose shipped models are the reference")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import torch

    from gmtnet.utils.environment import command_line, environment, write_result

    torch.set_num_threads(1)
    result = {"benchmark": "shipped_throughput", "command": command_line(), "environment": environment(),
              "compare": args.compare, "rounds": args.rounds, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            old = shipped_file(args.compare, task, Path(tmp))
            result["rows"].append(measure(task, old, ROOT / "src" / "gmtnet" / "pretrained" / f"{task}.pt", args.rounds))
    print(write_result(args.out, "shipped_throughput", result, markdown(result)))


if __name__ == "__main__":
    main()
