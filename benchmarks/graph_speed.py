"""The smooth graph against the paper's k-NN graph, side by side in one run: preprocessing,
training steps and inference.

    python benchmarks/graph_speed.py            # needs `gmtnet data fetch` first

For each task (matminer MP benchmark), with the fast preset, structures symmetrized within
symprec (the default of new models), one thread, the two graphs alternating in every round
(--rounds, medians over rounds, so that drift of the machine hits both alike):

- preprocessing: seconds per crystal of ``model.graph`` (symmetry, refinement, graph, orbit map)
  on the first --preprocess crystals of the training split;
- training: seconds per batch of 64 at one atom per orbit (``gmtnet train --orbits``; forward,
  Huber loss, backward, AdamW step), --batches batches after 2 warm-up batches;
- inference: crystals/s of ``predict_graphs`` (batch 64, one atom per orbit) on the test split.

Also the mean edges per atom of each graph. Writes benchmarks/results/graph_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

TASKS = ("dielectric", "piezoelectric", "elastic")
GRAPHS = ("knn", "smooth")


def one_round(task: str, graph: str, train, test, args) -> dict:
    """The three timings of one graph in one round."""
    import numpy as np

    from gmtnet.model import build_model
    from gmtnet.training.timing import training_step_times

    model = build_model(task, preset="fast", graph=graph)
    structures = [r.structure for r in train[:args.preprocess]]
    t0 = time.perf_counter()
    graphs = [model.graph(s) for s in structures]
    preprocess = (time.perf_counter() - t0) / len(structures)
    edges_per_atom = sum(g.n_edges for g in graphs) / sum(g.n_atoms for g in graphs)
    train_graphs = graphs + [model.graph(r.structure) for r in train[args.preprocess:]]
    order = np.random.default_rng(0).permutation(len(train_graphs))[:64 * (args.batches + 2)]
    labels = np.stack([train[i].tensor for i in order])
    _, steps = training_step_times(model, [train_graphs[i] for i in order], labels, 64, orbits=True)
    test_graphs = [model.graph(r.structure) for r in test]
    model.predict_graphs(test_graphs[:64])  # warm-up
    t0 = time.perf_counter()
    model.predict_graphs(test_graphs, batch_size=64, orbits=True)
    inference = len(test_graphs) / (time.perf_counter() - t0)
    return {"preprocess_s_per_crystal": preprocess, "train_s_per_batch": statistics.median(steps[2:]),
            "inference_crystals_per_s": inference, "edges_per_atom": edges_per_atom}


def markdown(result: dict) -> str:
    lines = ["# Smooth graph against k-NN graph: speed side by side", "",
             f"Fast preset, structures symmetrized, one thread, {result['rounds']} alternating rounds (medians); "
             "ratio = smooth / k-NN time (above 1: the smooth graph is slower).", "",
             "| task | measure | k-NN | smooth | ratio (time) |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        k, s = row["knn"], row["smooth"]
        lines.append(f"| {row['task']} | edges per atom | {k['edges_per_atom']:.1f} | {s['edges_per_atom']:.1f} | "
                     f"{s['edges_per_atom'] / k['edges_per_atom']:.2f} |")
        lines.append(f"| {row['task']} | preprocessing ms/crystal | {1e3 * k['preprocess_s_per_crystal']:.2f} | "
                     f"{1e3 * s['preprocess_s_per_crystal']:.2f} | "
                     f"{s['preprocess_s_per_crystal'] / k['preprocess_s_per_crystal']:.2f} |")
        lines.append(f"| {row['task']} | training s/batch of 64 | {k['train_s_per_batch']:.3f} | "
                     f"{s['train_s_per_batch']:.3f} | {s['train_s_per_batch'] / k['train_s_per_batch']:.2f} |")
        lines.append(f"| {row['task']} | inference crystals/s | {k['inference_crystals_per_s']:.0f} | "
                     f"{s['inference_crystals_per_s']:.0f} | "
                     f"{k['inference_crystals_per_s'] / s['inference_crystals_per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--preprocess", type=int, default=200, help="crystals timed in preprocessing")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import torch

    from gmtnet.data import load_dataset
    from gmtnet.utils.environment import command_line, environment, write_result

    torch.set_num_threads(1)
    result = {"benchmark": "graph_speed", "command": command_line(), "environment": environment(),
              "rounds": args.rounds, "rows": []}
    for task in args.tasks.split(","):
        train, test = list(load_dataset(task, split="train")), list(load_dataset(task, split="test"))
        rounds = {graph: [] for graph in GRAPHS}
        for _ in range(args.rounds):
            for graph in GRAPHS:
                rounds[graph].append(one_round(task, graph, train, test, args))
        row = {"task": task, **{graph: {key: statistics.median(r[key] for r in rounds[graph]) for key in rounds[graph][0]}
                                for graph in GRAPHS}}
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    print(write_result(args.out, "graph_speed", result, markdown(result)))


if __name__ == "__main__":
    main()
