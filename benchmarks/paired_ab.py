"""Paired in-process A/B of two gmtnet checkouts: prediction passes and training steps.

    git worktree add /tmp/gmtnet-old <commit>
    python benchmarks/paired_ab.py /tmp/gmtnet-old/src --label fifth-round

On a VM whose speed drifts by more than the change being measured, separate benchmark runs cannot
tell two versions apart. Here both run in one process. The old checkout's package and this one's
are each kept as their own set of ``sys.modules`` entries, swapped in before every call, so that
gmtnet's imports inside functions resolve to the caller's version. Passes alternate between the
two on the same graphs (old, new, then new, old, ...), so both see the same machine phases. The
figure is the median of the per-round ratios of old to new time.

Prediction: ``predict_graphs`` over the test split at batch 64, one atom per orbit, from graphs
without cached point-group data (as speed.py's inference figure). Training: forward + Huber
loss + backward + AdamW on the training split's batches of 64, already collated, at one atom per
orbit and at every atom (--train-modes). One thread, flush-to-zero on, the fast preset; the models
have untrained weights. Writes benchmarks/results/paired-ab-<label>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


from speed import TASKS, _fresh  # noqa: E402  (graph copies without cached point-group data)


def _gmtnet_modules() -> dict:
    """The loaded gmtnet package and its submodules, by name."""
    return {k: v for k, v in sys.modules.items() if k == "gmtnet" or k.startswith("gmtnet.")}


class _Versions:
    """The gmtnet modules of the two checkouts, swapped into ``sys.modules`` before each call, so
    that imports done inside functions (gmtnet does some lazily) resolve to the caller's version."""

    def __init__(self, old_src: str):
        self.old_src = old_src
        self.modules = {"old": {}, "new": {}}
        self.active = None

    def use(self, name: str) -> None:
        if self.active == name:
            return
        loaded = _gmtnet_modules()
        if self.active is not None:
            self.modules[self.active] = loaded
        for k in loaded:
            del sys.modules[k]
        sys.modules.update(self.modules[name])
        if self.old_src in sys.path:
            sys.path.remove(self.old_src)
        if name == "old":  # modules not imported yet come from the old checkout
            sys.path.insert(0, self.old_src)
        self.active = name

    def wrap(self, name: str, fn):
        def call(*args):
            self.use(name)
            return fn(*args)
        return call


def training_step(model, optimizer, collated: list, labels, batches: list):
    """``step(r)``: one training step on batch r mod len(batches) (forward, Huber loss against the
    batch's rows of ``labels``, backward, optimizer update), the batches already collated."""
    import torch

    def step(r):
        b = r % len(batches)
        optimizer.zero_grad()
        torch.nn.functional.huber_loss(model(collated[b]), labels[batches[b]]).backward()
        optimizer.step()

    return step


def alternate(runs: dict, rounds: int) -> tuple[dict, list[float]]:
    """Time two callables ``runs`` {name: fn(round)} in alternation (first, second, then second,
    first, ...), so that both see the same machine phases: ({name: seconds per round}, per-round
    ratios first / second)."""
    times = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            runs[name](r)
            times[name].append(time.perf_counter() - t0)
    return times, [a / b for a, b in zip(times[names[0]], times[names[1]])]


def _alternate(runs: dict, rounds: int) -> dict:
    """Median seconds of the "old" and "new" callables and the median per-round ratio old / new."""
    times, ratios = alternate(runs, rounds)
    return {"old_median_s": statistics.median(times["old"]), "new_median_s": statistics.median(times["new"]),
            "ratio_old_over_new": statistics.median(ratios), "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old_src", help="the src folder of the checkout to compare against")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--rounds", type=int, default=30, help="prediction passes per version")
    parser.add_argument("--train-modes", default="orbits,all", help="training at one atom per orbit and/or every atom ('' to skip)")
    parser.add_argument("--label", default="latest")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    tasks = [t for t in args.tasks.split(",") if t]
    modes = [m for m in args.train_modes.split(",") if m]
    versions = _Versions(str(Path(args.old_src).resolve()))
    versions.use("old")
    import gmtnet.model
    from gmtnet.training.optim import make_optimizer

    assert Path(gmtnet.model.__file__).resolve().is_relative_to(versions.old_src), gmtnet.model.__file__
    builders = {"old": (gmtnet.model.build_model, make_optimizer)}
    versions.use("new")
    import gmtnet.model
    from gmtnet.data import load_dataset
    from gmtnet.training.optim import make_optimizer

    from gmtnet.utils.environment import command_line, environment, git_commit, record_lines

    builders["new"] = (gmtnet.model.build_model, make_optimizer)
    result = {"benchmark": "paired_ab", "label": args.label, "old_commit": git_commit(versions.old_src),
              "command": command_line(), "environment": environment(), "rows": []}
    for task in tasks:
        versions.use("new")
        records = {split: load_dataset(task, split=split) for split in ("test", "train")}
        runs, graph_models = {}, {}
        for name in ("old", "new"):  # each version builds its own graphs (the class may differ)
            versions.use(name)
            model = graph_models[name] = builders[name][0](task, preset="fast")
            graphs = [model.graph(r.structure) for r in records["test"]]
            model.predict_graphs(_fresh(graphs))  # warm-up (and the lazy imports of this version)
            runs[name] = versions.wrap(name, lambda r, m=model, g=graphs: m.predict_graphs(_fresh(g), batch_size=64,
                                                                                          orbits=True))
        row = _alternate(runs, args.rounds)
        row.update(task=task, measure="prediction, batch 64, one atom per orbit", n_crystals=len(graphs))
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        if not modes:
            continue
        train_graphs = {}
        for name in ("old", "new"):
            versions.use(name)
            train_graphs[name] = [graph_models[name].graph(r.structure) for r in records["train"]]
        versions.use("new")
        labels = torch.as_tensor(np.stack([r.tensor for r in records["train"]]), dtype=torch.float32)
        order = np.random.default_rng(0).permutation(len(records["train"]))
        batches = [order[i * 64:(i + 1) * 64] for i in range(len(order) // 64)]
        for mode in modes:
            runs = {}
            for name in ("old", "new"):
                versions.use(name)
                build, make = builders[name]
                model = build(task, preset="fast")
                model.train()
                optimizer = make(model, 1e-3, 1e-5)
                batch_of = getattr(model, "prepared_batch", model.collate)  # older checkouts: collate prepares
                collated = [batch_of([train_graphs[name][i] for i in b], orbits=mode == "orbits") for b in batches]
                step = training_step(model, optimizer, collated, labels, batches)
                step(0)  # warm-up
                runs[name] = versions.wrap(name, step)
            row = _alternate(runs, 2 * len(batches))
            row.update(task=task, measure=f"training step, batch 64, {'one atom per orbit' if mode == 'orbits' else 'every atom'}")
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    versions.use("new")

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"paired-ab-{args.label}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    env = result["environment"]
    lines = [f"# gmtnet paired A/B: {args.label}", "",
             f"Old code: commit {result['old_commit']}; new code: commit {env.get('git_commit')}; one thread.", "",
             "| task | measure | old median s | new median s | old / new (median of paired rounds) | rounds |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['task']} | {r['measure']} | {r['old_median_s']:.4f} | {r['new_median_s']:.4f} | "
                     f"**{r['ratio_old_over_new']:.3f}** | {r['rounds']} |")
    lines += ["", *record_lines(env, result["command"])]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
