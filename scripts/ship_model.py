"""Copy finished training runs' best models into the package and write the model card.

    GMTNET_DATA=... python scripts/ship_model.py TASK RUN_DIR [RUN_DIR ...] [--hardware "..."] [--source mp2026]
    GMTNET_DATA=... python scripts/ship_model.py TASK [RUN_DIR ...] --keep-shipped

One RUN_DIR ships that run's best model; several ship their ensemble (the mean of their
predictions, see gmtnet.model.ensemble). HARDWARE describes where the runs trained (default:
this machine's CPU). With --keep-shipped the shipped model's members (and their entries in the
card) stay and the RUN_DIRs are added to them; --keep-members 1,3 keeps only those members (1 is
the card's first run); with no RUN_DIR and all members kept, only the card is rewritten.
SOURCE is the benchmark the runs trained on (mp: matminer, mp2026, or mp+mp-dfpt: the union of
the matminer and MP-DFPT dielectric sets).

The shipped file is then given its error bounds (``gmtnet model calibrate``: 90% coverage,
calibrated on SOURCE's val split; for a model with parts one per part) before any test split is
read.

The card (src/gmtnet/pretrained/<task>.json and .md) records the data, split, epochs, training
hardware and wall time of every run, and the test-split metrics from the same code as
``gmtnet evaluate``, in the original frame and in a random rotated and reflected frame: on the
test split of SOURCE's first benchmark, and on the matminer one and each further benchmark of
SOURCE (each part's too, and the MP-DFPT high-k screen for a dielectric model).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from gmtnet.data import load_dataset
from gmtnet.model import load_model
from gmtnet.model.io import combine_models, read_model_file
from gmtnet.tensors.transform import random_orthogonal
from gmtnet.model.io import save_model
from gmtnet.tensors import get_tensor_type
from gmtnet.training.calibration import attach_error_bounds, bounds_of_evaluation
from gmtnet.training.evaluate import (error_bound_table, evaluate_model, high_k_screen, high_k_text, metrics_json,
                                      metrics_table)
from gmtnet.utils.environment import environment
from gmtnet.utils.io import atomic_write_text

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "gmtnet" / "pretrained"


def run_summary(run: Path) -> dict:
    """What the card says of one training run."""
    history = json.loads((run / "log.json").read_text())
    config = json.loads((run / "config.json").read_text())
    meta = read_model_file(run / "best.pt")["metadata"]
    return {"run": run.name, "architecture": config["model"], "preset": config["preset"],
            "loss": config.get("loss", "huber"), "seed": config["seed"], "epochs": config["epochs"],
            "best_epoch": meta.get("epoch"), "val_fnorm": meta.get("val_fnorm"),
            "training_wall_s": float(sum(h["seconds"] for h in history)), "train_config": config,
            "init_from": config.get("init_from")}


def init_text(run: dict) -> str:
    """Where a run started: member K of a model file, or another run (its folder's name)."""
    member = run.get("train_config", {}).get("init_member")
    path = Path(run["init_from"])
    return f"member {member} of `{path.name}`" if member else f"`{path.parent.name}`"


def shipped_members(target: Path) -> list:
    """The networks of a shipped model file: its members, or the model itself."""
    from gmtnet.model.ensemble import EnsembleModel

    model = load_model(target)
    return list(model.members) if isinstance(model, EnsembleModel) else [model]


DATA = {"mp": "Materials Project benchmark (matminer 0.3.9 CSVs), curated by gmtnet",
        "mp2026": "MP-2026 benchmark (Materials Project API, 2026-07-04, CC-BY-4.0), curated by gmtnet",
        "mp-dfpt": "MP-DFPT dielectric benchmark (Materials Project DFPT, electronic and ionic parts, CC-BY-4.0), "
                   "curated by gmtnet"}
SOURCES = ("mp", "mp2026", "mp+mp-dfpt")


def data_text(source: str) -> str:
    """The card's description of a source (a union: each benchmark's, joined)."""
    return "; ".join(DATA[name] for name in source.split("+"))


def json_of(result: dict) -> dict:
    """The card's record of one ``evaluate_model`` result: metrics, error bound, each part's."""
    out = {**metrics_json(result), "n": len(result["errors"]), "error_bound": result.get("error_bound")}
    if result["parts"]:
        out["parts"] = {name: {**metrics_json(p), "n": p["n"], "error_bound": p.get("error_bound")}
                        for name, p in result["parts"].items()}
    return out


def parts_md(result: dict) -> str:
    """Markdown tables of each part of an ``evaluate_model`` result (empty without parts)."""
    md = ""
    for name, part in result["parts"].items():
        unit = get_tensor_type(name).unit
        md += (f"  - {name} ({part['n']} crystals with this label):\n\n{metrics_table(part, unit)}\n"
               + (f"{error_bound_table(part['error_bound'], unit)}\n" if "error_bound" in part else ""))
    return md


def main(task: str, run_dirs: list[Path], hardware: str | None = None, keep_shipped: bool = False,
         keep_members: list[int] | None = None, source: str = "mp") -> None:
    from gmtnet.model.ensemble import EnsembleModel

    runs = [run_summary(r) for r in run_dirs]
    target = PRETRAINED / f"{task}.pt"
    if keep_shipped:
        old_card = json.loads((PRETRAINED / f"{task}.json").read_text())
        keep = keep_members or range(1, len(old_card["runs"]) + 1)
        runs = [old_card["runs"][i - 1] for i in keep] + runs
        hardware = hardware or old_card["hardware"]
        if run_dirs or keep_members is not None:
            shipped = shipped_members(target)
            members = [shipped[i - 1] for i in keep] + [load_model(r / "best.pt") for r in run_dirs]
            save_model(members[0] if len(members) == 1 else EnsembleModel(members), target)
    elif len(run_dirs) == 1:
        shutil.copyfile(run_dirs[0] / "best.pt", target)
    elif run_dirs:
        combine_models([r / "best.pt" for r in run_dirs], target)
    else:
        raise SystemExit("give at least one RUN_DIR, or --keep-shipped")
    model = load_model(target)
    data = load_dataset(task, source=source)
    val_result = evaluate_model(model, data.split("val"))
    bounds = bounds_of_evaluation(val_result, calibration=f"{source} val")  # before any test crystal
    bound = bounds[task]
    attach_error_bounds(model, bounds)
    save_model(model, target, **model.metadata)
    first, *more = source.split("+")
    test = load_dataset(task, source=first, split="test")
    result = evaluate_model(model, test)
    rotation = random_orthogonal(np.random.default_rng(2024), improper=True)
    rotated = evaluate_model(model, test, rotation=rotation)
    others = {}
    for name in dict.fromkeys([*more, "mp"]):  # the other benchmarks' test splits, and matminer's
        if name != first:
            others[name] = evaluate_model(model, load_dataset(task, source=name, split="test"))
    high_k = None
    if task == "dielectric" and "mp-dfpt" in others:
        high_k = high_k_screen(model, load_dataset(task, source="mp-dfpt", split="test"),
                               others["mp-dfpt"]["predictions"], load_dataset(task, source="mp-dfpt", split="screened"))
    env = environment()
    kind = "GMTNet" if len(runs) == 1 else f"ensemble of {len(runs)} GMTNet runs (mean prediction)"
    card = {
        "task": task, "model": kind, "n_members": len(runs), "runs": runs,
        "data": data_text(source), "source": source,
        "split": "train", "validation": "val (best epoch of each run by validation Fnorm)",
        "test": "test (never used in training or selection)",
        "n_train": len(data.split("train")), "n_test": len(test),
        "val_fnorm": val_result["overall"].fnorm,
        "training_wall_s": float(sum(r["training_wall_s"] for r in runs)),
        "hardware": hardware or f"{env['cpu']}, 1 thread per run (CPU)", "date": env["date"], "torch": env["torch"],
        "parameters": model.n_parameters(), "file_bytes": target.stat().st_size,
        "test_source": first,
        "test_metrics": metrics_json(result),
        "test_metrics_rotated_reflected": metrics_json(rotated),
        "rotation": rotation.tolist(),
        "error_bound": bound.to_dict(), "test_error_bound": result["error_bound"],
        "part_error_bounds": {name: b.to_dict() for name, b in bounds.items() if name != task},
        "test_parts": json_of(result).get("parts", {}),
        "other_test_metrics": {k: json_of(v) for k, v in others.items()},
        "high_k_screen": high_k,
    }
    atomic_write_text(PRETRAINED / f"{task}.json", json.dumps(card, indent=1) + "\n")
    o, r = result["overall"], rotated["overall"]
    members = "\n".join(
        f"  - `{x['run']}`: {x['architecture']} preset `{x['preset']}`, loss `{x['loss']}`, seed {x['seed']}, "
        f"best epoch {x['best_epoch']} of {x['epochs']}, validation Fnorm {x['val_fnorm']:.3f}, "
        f"{x['training_wall_s'] / 60:.0f} min"
        + (f", initialised from {init_text(x)} (its training not counted)" if x.get("init_from") else "")
        for x in runs)
    md = (f"# Model card: {task}\n\n"
          f"- model: {kind}, {card['parameters']:,} parameters, {card['file_bytes'] / 1e6:.1f} MB\n"
          f"- data: {card['data']}; trained on the train split ({card['n_train']} crystals); each run's "
          f"checkpoint chosen on the val split ({'ensemble ' if len(runs) > 1 else ''}validation Fnorm "
          f"{card['val_fnorm']:.3f})\n"
          f"- runs:\n{members}\n"
          f"- training: {card['training_wall_s'] / 60:.0f} min in all on {card['hardware']}; card written "
          f"{card['date'][:10]}\n"
          f"- {DATA[first].split(' (')[0]} test split ({len(test)} crystals), `gmtnet evaluate`:\n\n"
          f"{metrics_table(result, model.ttype.unit)}\n{parts_md(result)}"
          f"- same test set in a random rotated and reflected frame: Fnorm {r.fnorm:.4f} (original {o.fnorm:.4f}), "
          f"zero success {r.zero_success}, equality success {r.equality_success}\n"
          + "".join(f"- {'error bound' if name == task else name + ' error bound'}: {b.scale:.4g} x (members' spread + "
                    f"{b.offset:.4g}), calibrated on the {b.n_calibration} crystals of the {source} val split for 90% "
                    f"coverage ({100 * b.calibration_coverage:.1f}% there)\n" for name, b in bounds.items())
          + f"- error bound on the test split:\n\n{error_bound_table(result['error_bound'], model.ttype.unit)}\n")
    for name, other in others.items():
        md += (f"- {DATA[name].split(' (')[0]} test split ({len(other['errors'])} crystals):\n\n"
               f"{metrics_table(other, model.ttype.unit)}\n{error_bound_table(other['error_bound'], model.ttype.unit)}\n"
               f"{parts_md(other)}")
    if high_k is not None:
        md += f"- {high_k_text(high_k)}"
    atomic_write_text(PRETRAINED / f"{task}.md", md)
    print(md)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("run_dirs", nargs="*", type=Path)
    parser.add_argument("--hardware", default=None)
    parser.add_argument("--source", default="mp", choices=SOURCES, help="benchmark the runs trained on")
    parser.add_argument("--keep-shipped", action="store_true",
                        help="add the runs to the shipped model's members (none: rewrite its card only)")
    parser.add_argument("--keep-members", default=None,
                        help="with --keep-shipped: comma-separated 1-based indices of the members to keep")
    args = parser.parse_args()
    keep = [int(i) for i in args.keep_members.split(",")] if args.keep_members else None
    main(args.task, args.run_dirs, args.hardware, args.keep_shipped, keep, args.source)
