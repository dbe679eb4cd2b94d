"""gmtnet's speed benchmark: preprocessing, training steps, inference and scaling with cell size.

    python benchmarks/speed.py                      # everything, CPU; needs `gmtnet data fetch`
    python benchmarks/speed.py --device cuda        # training/inference/scaling on a GPU
    python benchmarks/speed.py --export-graphs DIR  # write prebuilt graphs for a machine without
                                                    # pymatgen/spglib, then there: --graphs DIR

Writes benchmarks/results/speed-<label>.json and .md (label: --label, default the device).

Sections (--sections, comma separated):
  preprocessing  symmetry analysis + k-NN graph + point-group projectors for every crystal of
                 the dielectric training set, one thread: crystals/s, once per symmetry
                 backend (--backends; spglib is the benchmark's definition, moyopy faster).
                 Projectors as training computes them (model.prepare_graphs, all at once), and
                 also one crystal at a time (collate([graph]), the older protocol).
  training       seconds per batch of 64 (forward + Huber loss + backward + AdamW step) per task,
                 for each --threads (CPU) or on CUDA, after 2 warm-up batches, median of
                 --batches batches drawn like training draws them (seeded shuffle); also with
                 batches at one atom per orbit (train --orbits; first thread count); with
                 --compile also with the hot kernels compiled.
  inference      crystals/s of batched prediction (batch 64 and batch 1) on the test split (median
                 of --inference-passes passes, after a warm-up pass), from
                 prebuilt graphs (projectors included), at one atom per orbit (the default of
                 prediction) and at every atom; on CPU also end to end from structures; with
                 --compile also batch 64 with the hot kernels compiled.
  scaling        time and peak memory per crystal for supercells of one real crystal, 2 to 500
                 atoms, every atom evaluated; the fitted exponent of time against atoms (the
                 paper's O(nk): 1).

Timings are medians. Scaling runs each size in a fresh process; its peak memory is the rise of
the resident size above the level before prediction (Linux peak-RSS mark, reset first) on
CPU, torch.cuda.max_memory_allocated above the model's own on CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path


TASKS = ("dielectric", "piezoelectric", "elastic")
SCALING_CELLS = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (4, 2, 2), (4, 4, 2), (4, 4, 4), (8, 4, 4), (10, 5, 5)]


def _median_time(fn, repeats: int) -> tuple[float, object]:
    """(median seconds of ``repeats`` calls of fn, the last call's result)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _takes(fn, name: str) -> bool:
    """Whether ``fn`` takes the argument ``name`` (older code, measured with
    PYTHONPATH=<old checkout>/src, may not: e.g. ``orbits`` or a symmetry ``backend``)."""
    import inspect

    return name in inspect.signature(fn).parameters


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _fresh(graphs):
    """Copies of graphs without their point-group records (so that timings include computing
    them); older checkouts keep them in a ``cache`` attribute."""
    import copy

    out = []
    for g in graphs:
        h = copy.copy(g)
        if hasattr(h, "point_group"):
            h.point_group = None
        else:
            h.cache = type(h.cache)()
        out.append(h)
    return out


def batch_of(model):
    """The model's call that prepares and collates graphs (older checkouts: ``collate`` did both)."""
    return getattr(model, "prepared_batch", model.collate)


# ---- data -----------------------------------------------------------------------------------
def load_graphs(task: str, split: str, args) -> tuple[list, list]:
    """(graphs, labels) of a split, from --graphs exports or built here from the dataset."""
    import numpy as np

    if args.graphs:
        with open(Path(args.graphs) / f"{task}-{split}.pkl", "rb") as handle:
            blob = pickle.load(handle)
        return blob["graphs"], blob["labels"]
    from gmtnet.data import load_dataset
    from gmtnet.model import build_model

    records = load_dataset(task, split=split)
    model = build_model(task, preset=args.preset)
    return [model.graph(r.structure) for r in records], np.stack([r.tensor for r in records])


def export_graphs(args) -> None:
    out = Path(args.export_graphs)
    out.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        for split in ("train", "test"):
            graphs, labels = load_graphs(task, split, args)
            with open(out / f"{task}-{split}.pkl", "wb") as handle:
                pickle.dump({"graphs": _fresh(graphs), "labels": labels}, handle)
    graphs, _ = scaling_graphs(args)
    with open(out / "scaling.pkl", "wb") as handle:
        pickle.dump({"graphs": graphs}, handle)
    print(f"wrote graphs to {out}")


# ---- sections --------------------------------------------------------------------------------
def bench_preprocessing(args) -> list[dict]:
    """One row per symmetry backend: seconds per crystal of symmetry analysis, graph and projectors."""
    import torch

    from gmtnet.data import load_dataset
    from gmtnet.graph import build_graph
    from gmtnet.model import build_model
    from gmtnet.symmetry import analyze_symmetry

    torch.set_num_threads(1)
    structures = [r.structure for r in load_dataset("dielectric", split="train")][: args.limit]
    model = build_model("dielectric", preset=args.preset)
    rows = []
    has_backends = _takes(analyze_symmetry, "backend")  # older checkouts: spglib only
    for backend in args.backend_list if has_backends else ["spglib"]:
        def analyse(s, backend=backend):
            return analyze_symmetry(s, 1e-3, backend=backend) if has_backends else analyze_symmetry(s, 1e-3)

        for s in structures[:20]:  # warm-up: imports and first-call costs stay out of the timings
            batch_of(model)([build_graph(s, k=16, symmetry=analyse(s))])
        t0 = time.perf_counter()
        symmetries = [analyse(s) for s in structures]
        t_sym = time.perf_counter() - t0
        t0 = time.perf_counter()
        graphs = [build_graph(s, k=16, symmetry=sym) for s, sym in zip(structures, symmetries)]
        t_graph = time.perf_counter() - t0
        # the point-group projectors the batches need (cached per graph): as training's
        # preprocessing computes them (model.prepare_graphs, all graphs in one call), and one
        # crystal at a time through collate (older checkouts have only this)
        singles = _fresh(graphs)
        t0 = time.perf_counter()
        for g in singles:
            batch_of(model)([g])
        t_single = time.perf_counter() - t0
        t_proj = t_single
        if hasattr(model, "prepare_graphs"):
            t0 = time.perf_counter()
            model.prepare_graphs(graphs)
            t_proj = time.perf_counter() - t0
        n = len(structures)
        total = t_sym + t_graph + t_proj
        rows.append({"backend": backend, "n_crystals": n, "mean_atoms": sum(len(s) for s in structures) / n,
                     "mean_edges": sum(g.n_edges for g in graphs) / n,
                     "symmetry_s_per_crystal": t_sym / n, "graph_s_per_crystal": t_graph / n,
                     "projectors_s_per_crystal": t_proj / n, "projectors_one_at_a_time_s_per_crystal": t_single / n,
                     "total_s_per_crystal": total / n, "crystals_per_s": n / total,
                     "total_one_at_a_time_s_per_crystal": (t_sym + t_graph + t_single) / n})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_training(args) -> list[dict]:
    import numpy as np
    import torch

    from gmtnet.model import build_model
    from gmtnet.training.timing import training_step_times

    rows = []
    has_orbits = _takes(training_step_times, "orbits")  # settings: (threads, compiled, orbits)
    plain = [(t, False) for t in args.thread_list] if args.device == "cpu" else [(0, False)]
    settings = [(t, c, False) for t, c in plain]
    if has_orbits:
        settings += [(plain[0][0], False, True)]
    if args.compile:
        settings += [(t, True, False) for t, _ in plain] + ([(plain[0][0], True, True)] if has_orbits else [])
    warmup = 2  # first use of kernels, compilation, projector caches
    for task in args.task_list:
        graphs, labels = load_graphs(task, "train", args)
        order = np.random.default_rng(0).permutation(len(graphs))
        batches = [order[(b * 64) % len(order):][:64] for b in range(args.batches + warmup)]
        batches = np.concatenate([b if len(b) == 64 else order[:64] for b in batches])
        for threads, compiled, orbits in settings:
            if threads:
                torch.set_num_threads(threads)
            model = build_model(task, preset=args.preset).to(args.device)
            if compiled:
                model.compile_kernels()
            collate_times, times = training_step_times(model, [graphs[i] for i in batches], labels[batches], 64,
                                                       **({"orbits": True} if orbits else {}))
            collate_times, times = collate_times[warmup:], times[warmup:]
            atoms = [sum(graphs[i].n_atoms for i in b) for b in batches.reshape(-1, 64)[warmup:]]
            rows.append({"task": task, "device": args.device, "threads": threads or None, "compiled": compiled,
                         "orbits": orbits,
                         "preset": args.preset, "batches": len(times),
                         "median_s_per_batch": statistics.median(times), "mean_s_per_batch": statistics.fmean(times),
                         "min_s_per_batch": min(times), "median_collate_s": statistics.median(collate_times),
                         "mean_atoms_per_batch": statistics.fmean(atoms), "parameters": model.n_parameters()})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_inference(args) -> list[dict]:
    import torch

    from gmtnet.model import build_model
    from gmtnet.model.base import TensorModel

    rows = []
    threads = args.thread_list[0] if args.device == "cpu" else None
    if threads:
        torch.set_num_threads(threads)
    for task in args.task_list:
        graphs, _ = load_graphs(task, "test", args)
        has_orbits = _takes(TensorModel.predict_graphs, "orbits")
        modes = [(False, True), (False, False)] if has_orbits else [(False, None)]
        modes += [(True, True if has_orbits else None)] if args.compile else []
        for compiled, orbits in modes:
            mode = {} if orbits is None else {"orbits": orbits}
            model = build_model(task, preset=args.preset).to(args.device)
            if compiled:
                model.compile_kernels()
            # warm-up; compiled: twice over the whole split, so that compilation for every batch
            # shape (one-off, 1-2 min) stays out of the throughput
            for _ in range(2 if compiled else 1):
                model.predict_graphs(_fresh(graphs), **mode)
            row = {"task": task, "device": args.device, "threads": threads, "compiled": compiled,
                   "orbits": orbits, "n_crystals": len(graphs), "passes": args.inference_passes}
            for batch_size in ((64,) if compiled else (64, 1)):
                times = []
                for _ in range(args.inference_passes if batch_size > 1 else max(1, args.inference_passes // 2)):
                    fresh = _fresh(graphs)
                    _sync(args.device)
                    t0 = time.perf_counter()
                    model.predict_graphs(fresh, batch_size=batch_size, **mode)
                    _sync(args.device)
                    times.append(time.perf_counter() - t0)
                row[f"graphs_batch{batch_size}_crystals_per_s"] = len(graphs) / statistics.median(times)
            if not args.graphs and args.device == "cpu" and not compiled:
                from gmtnet.data import load_dataset

                structures = [r.structure for r in load_dataset(task, split="test")]
                t0 = time.perf_counter()
                model.predict(structures, batch_size=64, **mode)
                row["end_to_end_batch64_crystals_per_s"] = len(structures) / (time.perf_counter() - t0)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def scaling_graphs(args) -> tuple[list, list[float]]:
    """Graphs of supercells (2 to 500 atoms) of the first 2-atom crystal of the dielectric test
    set, every atom moved by a seeded random 0.02 A (so that no cell is a supercell of a smaller
    one, which gmtnet would analyse in its primitive cell: the cost of that many inequivalent
    atoms), and the median seconds of building each (symmetry analysis + graph)."""
    import numpy as np
    from pymatgen.core import Structure

    from gmtnet.data import load_dataset
    from gmtnet.model import build_model

    base = next(r.structure for r in load_dataset("dielectric", split="test") if len(r.structure) == 2)
    model = build_model("dielectric", preset=args.preset)
    graphs, seconds = [], []
    rng = np.random.default_rng(0)
    for cell in SCALING_CELLS:
        supercell = base * cell
        moved = supercell.cart_coords + rng.normal(scale=0.02 / np.sqrt(3), size=supercell.cart_coords.shape)
        structure = Structure(supercell.lattice, supercell.species, moved, coords_are_cartesian=True)
        t, graph = _median_time(lambda s=structure: model.graph(s), 3 if len(structure) <= 128 else 1)
        graphs.append(graph)
        seconds.append(t)
    return graphs, seconds


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as handle:
        return next(float(line.split()[1]) for line in handle if line.startswith(field + ":")) / 1024.0


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark of this process (Linux: clear_refs 5); the current RSS, MiB."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return _proc_status_mib("VmRSS")


def scaling_child(args) -> dict:
    """Time and peak memory of predicting one pickled graph, batch 1, in this (fresh) process."""
    import torch

    from gmtnet.model import build_model

    if args.device == "cpu":
        torch.set_num_threads(args.thread_list[0])
    with open(args.scaling_child, "rb") as handle:
        graph = pickle.load(handle)
    model = build_model("dielectric", preset=args.preset).to(args.device)
    import gc

    gc.collect()
    rss0 = reset_peak_rss()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    # every atom evaluated: a supercell at one atom per orbit would cost what its primitive cell
    # does, and the cost of a crystal without symmetry is what the scaling is about
    mode = {"orbits": False} if _takes(model.predict_graphs, "orbits") else {}
    model.predict_graphs(_fresh([graph]), batch_size=1, **mode)  # warm-up

    def run():
        model.predict_graphs(_fresh([graph]), batch_size=1, **mode)
        _sync(args.device)
    t, _ = _median_time(run, 5 if graph.n_atoms <= 128 else 3)
    if args.device.startswith("cuda"):
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = _proc_status_mib("VmHWM") - rss0
    return {"model_s": t, "peak_memory_mib": peak}


def bench_scaling(args) -> dict:
    import subprocess
    import tempfile

    import numpy as np

    rows = []
    if args.graphs:
        with open(Path(args.graphs) / "scaling.pkl", "rb") as handle:
            graphs = pickle.load(handle)["graphs"]
        prep = [None] * len(graphs)
    else:
        graphs, prep = scaling_graphs(args)

    with tempfile.TemporaryDirectory() as tmp:
        for g, t_prep in zip(graphs, prep):
            path = Path(tmp) / "graph.pkl"
            with open(path, "wb") as handle:
                pickle.dump(_fresh([g])[0], handle)
            # a fresh process per size, so that its peak memory is this size's alone
            cmd = [sys.executable, __file__, "--scaling-child", str(path), "--device", args.device,
                   "--threads", str(args.thread_list[0]), "--preset", args.preset]
            child = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            rows.append({"atoms": g.n_atoms, "edges": g.n_edges, "preprocessing_s": t_prep, **child})
            print(json.dumps(rows[-1]), flush=True)

    def exponent(key, min_atoms=16):
        pts = [(r["atoms"], r[key]) for r in rows if r[key] is not None and r[key] > 0 and r["atoms"] >= min_atoms]
        if len(pts) < 2:
            return None
        x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        return float(np.polyfit(x, y, 1)[0])

    return {"crystal": "first 2-atom crystal of the dielectric test set, supercells, atoms moved by 0.02 A", "rows": rows,
            "model_time_exponent": exponent("model_s"), "model_time_exponent_64": exponent("model_s", 64),
            "memory_exponent_64": exponent("peak_memory_mib", 64),
            "preprocessing_time_exponent": exponent("preprocessing_s"),
            "fit_range": "atoms >= 16 (below that fixed per-call costs dominate)"}


# ---- report ----------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# gmtnet speed: {result['label']}", "",
             f"{env['date']}; CPU {env['cpu']} ({env['cores_available']} cores available); GPU {env.get('gpu')}; "
             f"torch {env['torch']}, e3nn {env['e3nn']}, numpy {env['numpy']}, spglib {env['spglib']}, moyopy {env.get('moyopy')}; "
             f"model preset {result['preset']}; code {result.get('code', '')}", ""]
    if "preprocessing" in result:
        lines += ["## Preprocessing (dielectric train set, 1 thread)", "",
                  "Projectors: as training's preprocessing computes them (`prepare_graphs`, all crystals "
                  "in one call); in brackets one crystal at a time (`collate([graph])`, how older code was timed).", "",
                  "| symmetry backend | crystals | mean atoms | symmetry s | graph s | projectors s | total s/crystal | crystals/s |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in result["preprocessing"]:
            single = p.get("projectors_one_at_a_time_s_per_crystal", p["projectors_s_per_crystal"])
            single_total = p.get("total_one_at_a_time_s_per_crystal", p["total_s_per_crystal"])
            lines.append(f"| {p['backend']} | {p['n_crystals']} | {p['mean_atoms']:.1f} | {p['symmetry_s_per_crystal']:.5f} | "
                         f"{p['graph_s_per_crystal']:.5f} | {p['projectors_s_per_crystal']:.5f} ({single:.5f}) | "
                         f"{p['total_s_per_crystal']:.5f} ({single_total:.5f}) | {p['crystals_per_s']:.1f} |")
        lines.append("")
    if "training" in result:
        lines += ["## Training step (batch 64: forward + loss + backward + AdamW)", "",
                  "| task | device | threads | compiled | atoms evaluated | median s/batch | mean s/batch | min s/batch | batches |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in result["training"]:
            lines.append(f"| {r['task']} | {r['device']} | {r['threads'] or ''} | {'yes' if r['compiled'] else 'no'} | "
                         f"{'one per orbit' if r.get('orbits') else 'all'} | "
                         f"{r['median_s_per_batch']:.3f} | {r['mean_s_per_batch']:.3f} | {r['min_s_per_batch']:.3f} | "
                         f"{r['batches']} |")
        lines.append("")
    if "inference" in result:
        lines += ["## Inference (test split, projectors and snapping included)", "",
                  "| task | device | threads | compiled | atoms evaluated | crystals/s batch 64 | crystals/s batch 1 "
                  "| end to end crystals/s (batch 64) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in result["inference"]:
            e2e, b1 = r.get("end_to_end_batch64_crystals_per_s"), r.get("graphs_batch1_crystals_per_s")
            atoms = {True: "one per orbit", False: "all"}.get(r.get("orbits"), "all")
            lines.append(f"| {r['task']} | {r['device']} | {r['threads'] or ''} | {'yes' if r.get('compiled') else 'no'} | "
                         f"{atoms} | {r['graphs_batch64_crystals_per_s']:.1f} | {f'{b1:.1f}' if b1 else 'n/a'} | "
                         f"{f'{e2e:.1f}' if e2e else 'n/a'} |")
        lines.append("")
    if "scaling" in result:
        s = result["scaling"]
        mexp, pexp = s["model_time_exponent"], s["preprocessing_time_exponent"]
        lines += [f"## Scaling with atoms per cell ({s['crystal']}, batch 1)", "",
                  f"Fitted exponent of model time vs atoms ({s['fit_range']}): "
                  f"{mexp:.3f}; over atoms >= 64: {s['model_time_exponent_64']:.3f}; peak memory over atoms >= 64: "
                  f"{s['memory_exponent_64']:.3f}" + (f"; preprocessing: {pexp:.3f}" if pexp is not None else ""), "",
                  "| atoms | edges | model s | preprocessing s | peak memory MiB |", "|---|---|---|---|---|"]
        for r in s["rows"]:
            prep = f"{r['preprocessing_s']:.4f}" if r["preprocessing_s"] is not None else "n/a"
            lines.append(f"| {r['atoms']} | {r['edges']} | {r['model_s']:.4f} | {prep} | {r['peak_memory_mib']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="preprocessing,training,inference,scaling")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", default="1,2", help="CPU thread counts for training (the first one for the rest)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--inference-passes", type=int, default=7,
                        help="passes over the test split per inference figure (median; half as many at batch 1)")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--compile", action="store_true", help="also time training and inference with compile_kernels()")
    parser.add_argument("--no-flush-denormal", action="store_true",
                        help="leave subnormal floats on (gmtnet train flushes them; older versions did not)")
    parser.add_argument("--limit", type=int, default=None, help="preprocessing: first N crystals only")
    parser.add_argument("--backends", default="spglib,moyopy", help="preprocessing: symmetry backends to time")
    parser.add_argument("--graphs", default=None, help="read prebuilt graphs from this --export-graphs folder")
    parser.add_argument("--export-graphs", default=None)
    parser.add_argument("--scaling-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--label", default=None)
    parser.add_argument("--code", default="", help="free text naming the code measured (e.g. a commit)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.thread_list = [int(t) for t in args.threads.split(",") if t]
    args.task_list = [t for t in args.tasks.split(",") if t]
    args.backend_list = [b for b in args.backends.split(",") if b]
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import torch

    from gmtnet.utils.environment import command_line, environment, write_result

    if not args.no_flush_denormal:
        torch.set_flush_denormal(True)
    if args.export_graphs:
        export_graphs(args)
        return
    if args.scaling_child:
        print(json.dumps(scaling_child(args)))
        return
    label = args.label or args.device

    result = {"benchmark": "speed", "label": label, "command": command_line(), "preset": args.preset, "code": args.code,
              "flush_denormal": not args.no_flush_denormal, "environment": environment()}
    sections = [s for s in args.sections.split(",") if s]
    if "preprocessing" in sections and not args.graphs:
        result["preprocessing"] = bench_preprocessing(args)
    if "training" in sections:
        result["training"] = bench_training(args)
    if "inference" in sections:
        result["inference"] = bench_inference(args)
    if "scaling" in sections:
        result["scaling"] = bench_scaling(args)

    print(write_result(args.out, f"speed-{label}", result, markdown(result)))


if __name__ == "__main__":
    main()
