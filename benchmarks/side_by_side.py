"""gmtnet's defaults against the paper's method computed the reference way, side by side in one
process: training steps, preprocessing and batched inference.

    python benchmarks/side_by_side.py [--tasks dielectric,piezoelectric,elastic] [--rounds 20]

The reference configuration is GMTNet as the paper prints it and as an e3nn implementation of it
computes it: the "paper" preset (appendix A.4), e3nn's own per-edge tensor products and linear maps
(``edge_product="e3nn"``), every atom evaluated, the k-NN graph of the structure as given, no
stability map, spglib's symmetry analysis and each crystal's point-group data computed alone.
The defaults are what `gmtnet train` and `gmtnet predict` do when given no option: the "fast"
preset, one atom per orbit, the smooth graph of the symmetrized structure, moyopy (prediction)
and point-group data computed for whole batches.

Both run on the same crystals (the matminer MP sets; `gmtnet data fetch` first), one thread,
flush-to-zero on, untrained weights (speed does not depend on their values), and alternate round
by round (reference, default, then default, reference, ...) so that both see the same machine
phases; the figure is the median of the per-round ratios.

- training step: forward + Huber loss + backward + AdamW on a training batch of 64 (already
  collated, as a DataLoader delivers it), the batches drawn in a seeded order;
- preprocessing: structure -> graph and point-group data, for 64 training crystals per round;
- inference: crystals per second of batched prediction (batch 64, projection and snapping
  included) from prebuilt graphs of the test split.

The published GMTNet code itself is not part of this repository and not installed here, so no
ratio to it is measured; the reference configuration is what can be timed beside the defaults on
one machine. Writes benchmarks/results/side_by_side.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from paired_ab import alternate, training_step  # noqa: E402  (benchmarks/ is the script's folder)

TASKS = ("dielectric", "piezoelectric", "elastic")
BATCH = 64


def reference_model(task: str):
    """GMTNet as appendix A.4 prints it, computed by e3nn's own modules, on the k-NN graph."""
    from gmtnet.model import GMTNet, ModelConfig

    return GMTNet(ModelConfig.preset("paper", task, edge_product="e3nn", graph="knn", refine_structure=False,
                                     physical_bounds=False))


def default_model(task: str):
    """The model `gmtnet train --task TASK` builds with no other option."""
    from gmtnet.model.io import build_model_from_train_config
    from gmtnet.training.config import TrainConfig

    return build_model_from_train_config(TrainConfig(task=task))


def timed(runs: dict, rounds: int) -> dict:
    """Median seconds of the "reference" and "default" callables, alternating (paired_ab's
    ``alternate``), and the median, least and largest per-round ratio reference / default."""
    times, ratios = alternate({"reference": runs["reference"], "default": runs["default"]}, rounds)
    return {"reference_median_s": statistics.median(times["reference"]),
            "default_median_s": statistics.median(times["default"]),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios), "rounds": rounds}


def training_rows(task: str, records, rounds: int) -> dict:
    import numpy as np
    import torch

    from gmtnet.training.config import TrainConfig
    from gmtnet.training.optim import make_optimizer

    labels = torch.as_tensor(np.stack([r.tensor for r in records]), dtype=torch.float32)
    order = np.random.default_rng(0).permutation(len(records))
    batches = [order[i * BATCH:(i + 1) * BATCH] for i in range(min(rounds, len(order) // BATCH))]
    runs = {}
    for name, model, orbits in (("reference", reference_model(task), False),
                                ("default", default_model(task), TrainConfig(task=task).orbits)):
        model.train()
        optimizer = make_optimizer(model, 1e-3, 1e-5)
        graphs = {i: model.graph(records[i].structure) for b in batches for i in b}
        collated = [model.prepared_batch([graphs[i] for i in b], orbits=orbits) for b in batches]
        step = training_step(model, optimizer, collated, labels, batches)
        step(0)  # warm-up
        runs[name] = step
    return timed(runs, rounds)


def preprocessing_rows(task: str, records, rounds: int) -> dict:
    from gmtnet.prediction.predictor import Predictor
    from gmtnet.symmetry import analyze_symmetry

    reference = reference_model(task)
    predictor = Predictor(task, {task: default_model(task).eval()})
    model = predictor.models[task]
    groups = [records[(r * BATCH) % len(records):][:BATCH] for r in range(rounds)]

    def reference_run(r):
        for rec in groups[r]:  # spglib, the k-NN graph, the crystal's point-group data alone
            graph = reference.graph(rec.structure, symmetry=analyze_symmetry(rec.structure, backend="spglib"))
            reference.prepared_batch([graph])

    def default_run(r):  # what gmtnet predict does before the networks
        prepared = [predictor.prepare(rec.structure, rec.material_id) for rec in groups[r]]
        model.prepare_graphs([p.graphs[task] for p in prepared])

    reference_run(0)
    default_run(0)
    row = timed({"reference": reference_run, "default": default_run}, rounds)
    row["crystals_per_round"] = BATCH
    return row


def inference_rows(task: str, records, rounds: int) -> dict:
    from speed import _fresh  # noqa: E402  (graph copies without cached point-group data)

    runs = {}
    for name, model, orbits in (("reference", reference_model(task), False), ("default", default_model(task), True)):
        model.eval()
        graphs = [model.graph(r.structure) for r in records]
        model.predict_graphs(_fresh(graphs), batch_size=BATCH, orbits=orbits)  # warm-up
        runs[name] = lambda r, m=model, g=graphs, o=orbits: m.predict_graphs(_fresh(g), batch_size=BATCH, orbits=o)
    row = timed(runs, rounds)
    row.update(crystals=len(records), reference_crystals_per_s=len(records) / row["reference_median_s"],
               default_crystals_per_s=len(records) / row["default_median_s"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    import torch

    from gmtnet.data import load_dataset
    from gmtnet.utils.environment import command_line, environment, write_result

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    rows = []
    for task in [t for t in args.tasks.split(",") if t]:
        train, test = load_dataset(task, split="train"), load_dataset(task, split="test")
        for measure, fn, records in (("training step, batch 64", training_rows, train),
                                     ("preprocessing, 64 crystals", preprocessing_rows, train),
                                     ("inference, test split, batch 64", inference_rows, test)):
            row = {"task": task, "measure": measure, **fn(task, records, args.rounds)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"benchmark": "side_by_side", "rows": rows, "command": command_line(), "environment": environment()}
    print(write_result(args.out, "side_by_side", result, report(result)))


def report(result: dict) -> str:
    env = result["environment"]
    md = ["# gmtnet's defaults and the reference configuration, side by side", "",
          f"{env['date']}; {env['cpu']}; one thread; torch {env['torch']}, e3nn {env['e3nn']}. Reference: the "
          "paper preset computed by e3nn's own modules, every atom, the k-NN graph, spglib, point-group data "
          "per crystal. Defaults: `gmtnet train` / `gmtnet predict` with no option (fast preset, one atom per "
          "orbit, smooth graph of the symmetrized structure, moyopy in prediction, batched point-group data). "
          "Untrained weights; rounds alternate; ratio = reference time / default time, median of the "
          "per-round ratios (range in brackets).", "",
          "| task | measure | reference s | default s | reference / default | rounds |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        md.append(f"| {r['task']} | {r['measure']} | {r['reference_median_s']:.4f} | {r['default_median_s']:.4f} | "
                  f"**{r['ratio']:.1f}x** ({r['ratio_min']:.1f}-{r['ratio_max']:.1f}) | {r['rounds']} |")
    inference = [r for r in result["rows"] if "inference" in r["measure"]]
    if inference:
        md += ["", "Inference in crystals/s (reference, default): " + "; ".join(
            f"{r['task']} {r['reference_crystals_per_s']:.0f}, {r['default_crystals_per_s']:.0f}" for r in inference) + "."]
    md += ["", "The published GMTNet code is not part of this repository and not installed here: no ratio to it "
           "is measured."]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
