"""Seconds per training step (forward + Huber loss + backward + AdamW step) for batches of 64
crystals of a task's training set, default model, CPU, one thread by default.

    python benchmarks/train_step.py --task dielectric [--threads 1] [--batches 10]

Graphs are built beforehand (preprocessing is benchmarked separately). Reports the median over
the timed batches after one warm-up batch. Writes benchmarks/results/train_step_<task>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _env import environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="dielectric")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import numpy as np
    import torch

    from gmtnet.data import load_dataset
    from gmtnet.model import build_model
    from gmtnet.training.timing import training_step_times
    from gmtnet.utils.io import atomic_write_text

    torch.set_num_threads(args.threads)
    records = load_dataset(args.task, split="train")
    model = build_model(args.task)
    n_needed = args.batch_size * (args.batches + 1)
    records = [records[i % len(records)] for i in range(n_needed)]
    graphs = [model.graph(r.structure) for r in records]
    collate_times, times = training_step_times(model, graphs, np.stack([r.tensor for r in records]), args.batch_size)
    # the first batch is warm-up (and fills the per-graph projector caches)
    collate_times, times = collate_times[1:], times[1:]
    result = {
        "benchmark": "train_step", "task": args.task, "threads": args.threads, "batch_size": args.batch_size,
        "timed_batches": len(times), "median_s_per_batch": statistics.median(times),
        "min_s_per_batch": min(times), "median_collate_s": statistics.median(collate_times),
        "parameters": model.n_parameters(), "environment": environment(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"train_step_{args.task}_{args.threads}thread"
    atomic_write_text(args.out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    md = (f"# Training step, {args.task}, batch {args.batch_size}, {args.threads} thread(s) "
          f"({result['environment']['date']}, {result['environment']['cpu']})\n\n"
          f"| parameters | median s/batch (fwd+bwd+step) | min s/batch | collate s/batch (graphs prebuilt; point-group projectors computed on first use) |\n|---|---|---|---|\n"
          f"| {result['parameters']:,} | {result['median_s_per_batch']:.3f} | {result['min_s_per_batch']:.3f} "
          f"| {result['median_collate_s']:.3f} |\n")
    atomic_write_text(args.out / f"{stem}.md", md)
    print(md)


if __name__ == "__main__":
    main()
