"""How much a prediction moves when its input moves by amounts a user cannot see.

    python benchmarks/robustness.py                                  # the shipped models
    python benchmarks/robustness.py --model knn:dielectric=runs/a/best.pt --model smooth:dielectric=runs/b/best.pt

For each model and each crystal of its task's test split (``--split val`` for choices made on
validation data; matminer MP benchmark, or ``--source mp2026``), the structure is perturbed three
ways:

- noise 1e-4: Gaussian noise of standard deviation 1e-4 A added to every Cartesian coordinate of
  every atom (one draw per crystal, seeded);
- round 4: fractional coordinates rounded to 4 decimals (a typical CIF), lattice unchanged;
- noise 1e-3: as the first, 1e-3 A (the symmetry tolerance: the space group may change).

Every variant goes through ``Predictor`` (the ``gmtnet predict`` path: structures symmetrized
within symprec first, unless ``--raw-structure``). Reported per model: the relative change
|T(variant) - T(original)|_F / |T(original)|_F over the crystals (median, p90, max; crystals
predicted as exactly 0 are left out of the ratio) and the Fnorm against DFT of the original and of
each variant, and the p90 of the absolute change |T(variant) - T(original)|_F (label units).
Writes benchmarks/results/robustness.json and .md (``--name`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

TASKS = ("dielectric", "piezoelectric", "elastic")
VARIANTS = ("noise 1e-4", "round 4", "noise 1e-3")


def perturbed(structure, variant: str, rng):
    """A copy of ``structure`` perturbed as ``variant`` says (see the module docstring)."""
    import numpy as np
    from pymatgen.core import Structure

    if variant.startswith("noise"):
        sigma = float(variant.split()[1])
        cart = structure.cart_coords + rng.normal(scale=sigma, size=structure.cart_coords.shape)
        return Structure(structure.lattice, structure.species, cart, coords_are_cartesian=True)
    if variant == "round 4":
        return Structure(structure.lattice, structure.species, np.round(structure.frac_coords, 4))
    raise ValueError(variant)


def measure(label: str, task: str, model, records, refine: bool, seed: int = 0) -> dict:
    """The robustness figures of one model on ``records`` (see the module docstring)."""
    import numpy as np

    from gmtnet.prediction import Predictor
    from gmtnet.training.evaluate import evaluate_predictions

    predictor = Predictor(task, {task: model}, refine=refine)
    structures = {"original": [r.structure for r in records]}
    for k, variant in enumerate(VARIANTS):
        rng = np.random.default_rng(seed + k)
        structures[variant] = [perturbed(s, variant, rng) for s in structures["original"]]
    preds = {}
    for name, items in structures.items():
        results = predictor.predict(items)
        bad = [r.error for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{label}: {len(bad)} {name} crystals failed: {bad[0]}")
        preds[name] = np.stack([r.tensors[task] for r in results])
    n = len(records)
    base = preds["original"].reshape(n, -1)
    norm = np.linalg.norm(base, axis=1)
    out = {"label": label, "task": task, "n_crystals": n, "refine": refine, "changes": {}, "fnorm": {},
           "median_norm": float(np.median(norm))}
    for name, p in preds.items():
        # the forced patterns of the metric are the original structures' (the same crystals)
        out["fnorm"][name] = float(evaluate_predictions(p, records, task, structures["original"])["overall"].fnorm)
        if name == "original":
            continue
        change = np.linalg.norm(p.reshape(n, -1) - base, axis=1)
        rel = change[norm > 0] / norm[norm > 0]
        out["changes"][name] = {"median": float(np.median(rel)), "p90": float(np.quantile(rel, 0.9)),
                                "max": float(rel.max()), "n": int(len(rel)),
                                "absolute_p90": float(np.quantile(change, 0.9))}
    return out


def markdown(result: dict) -> str:
    lines = ["# Robustness: relative change of the prediction under invisible input changes", "",
             f"{result.get('split', 'test').capitalize()} split of each task ({result['source']} benchmark); "
             "relative Frobenius change against the "
             "unperturbed prediction, median / p90 / max over the crystals; Fnorm against DFT in label units.", "",
             "| model | task | structure | " + " | ".join(f"{v}: median / p90 / max" for v in VARIANTS)
             + " | Fnorm original | " + " | ".join(f"Fnorm {v}" for v in VARIANTS) + " |",
             "|---|---|---|" + "---|" * (2 * len(VARIANTS) + 1)]
    for r in result["rows"]:
        cells = [f"{c['median']:.2e} / {c['p90']:.2e} / {c['max']:.2e}" for c in (r["changes"][v] for v in VARIANTS)]
        fn = [f"{r['fnorm'][v]:.4g}" for v in ("original", *VARIANTS)]
        lines.append(f"| {r['label']} | {r['task']} | {'symmetrized' if r['refine'] else 'as given'} | "
                     + " | ".join(cells) + " | " + " | ".join(fn) + " |")
    lines += ["", "p90 of the absolute change (label units) and median |T(original)|_F of each row:", "",
              "| model | task | structure | " + " | ".join(VARIANTS) + " | median norm |", "|---|---|---|" + "---|" * 4]
    for r in result["rows"]:
        lines.append(f"| {r['label']} | {r['task']} | {'symmetrized' if r['refine'] else 'as given'} | "
                     + " | ".join(f"{r['changes'][v]['absolute_p90']:.2e}" for v in VARIANTS)
                     + f" | {r['median_norm']:.3g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[],
                        help="LABEL:TASK=MODEL_FILE (repeatable); default: the shipped model of each task")
    parser.add_argument("--source", default="mp", help="mp (matminer benchmark, default) or mp2026")
    parser.add_argument("--split", default="test", help="test (default) or val")
    parser.add_argument("--raw-structure", action="store_true", help="also measure without symmetrizing the input")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test crystals of each task")
    parser.add_argument("--name", default="robustness", help="results file name (without extension)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import torch

    from gmtnet.data import load_dataset
    from gmtnet.model import load_model
    from gmtnet.prediction import load_pretrained
    from gmtnet.utils.environment import command_line, environment, write_result

    torch.set_num_threads(1)
    specs = []
    for text in args.model:
        label, _, rest = text.partition(":")
        task, _, path = rest.partition("=")
        specs.append((label, task, load_model(path)))
    if not specs:
        specs = [("shipped", task, load_pretrained(task)) for task in TASKS]
    result = {"benchmark": "robustness", "command": command_line(), "environment": environment(),
              "source": args.source, "split": args.split, "rows": []}
    for label, task, model in specs:
        records = list(load_dataset(task, source=args.source, split=args.split))[:args.limit]
        for refine in (True, False) if args.raw_structure else (True,):
            result["rows"].append(measure(label, task, model, records, refine))
            print(json.dumps(result["rows"][-1]), flush=True)
    print(write_result(args.out, args.name, result, markdown(result)))


if __name__ == "__main__":
    main()
