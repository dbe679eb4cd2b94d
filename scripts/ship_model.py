"""Copy a finished training run's best model into the package and write its model card.

    GMTNET_DATA=... python scripts/ship_model.py dielectric runs/gmtnet-dielectric ["HARDWARE"]

HARDWARE describes where the run trained (default: this machine's CPU).

The card (src/gmtnet/pretrained/<task>.json and .md) records the data, split, epochs, training
hardware and wall time, and the test-split metrics from the same code as ``gmtnet evaluate``,
in the original frame and in a random rotated and reflected frame.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from gmtnet.data import load_dataset
from gmtnet.model import load_model
from gmtnet.model.io import read_model_file
from gmtnet.tensors.transform import random_orthogonal
from gmtnet.training.evaluate import evaluate_model, metrics_json, metrics_table
from gmtnet.utils.environment import environment
from gmtnet.utils.io import atomic_write_text

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "gmtnet" / "pretrained"


def main(task: str, run_dir: str, hardware: str | None = None) -> None:
    run = Path(run_dir)
    history = json.loads((run / "log.json").read_text())
    config = json.loads((run / "config.json").read_text())
    blob = read_model_file(run / "best.pt")
    target = PRETRAINED / f"{task}.pt"
    shutil.copyfile(run / "best.pt", target)
    model = load_model(target)
    data = load_dataset(task)
    test = data.split("test")
    result = evaluate_model(model, test)
    rotation = random_orthogonal(np.random.default_rng(2024), improper=True)
    rotated = evaluate_model(model, test, rotation=rotation)
    env = environment()
    card = {
        "task": task, "architecture": blob["architecture"], "preset": config["preset"],
        "data": "Materials Project benchmark (matminer 0.3.9 CSVs), curated by gmtnet",
        "split": "train", "validation": "val (best epoch by validation Fnorm)", "test": "test (never used in training)",
        "n_train": len(data.split("train")), "n_test": len(test),
        "epochs": config["epochs"], "best_epoch": blob["metadata"].get("epoch"),
        "val_fnorm": blob["metadata"].get("val_fnorm"),
        "training_wall_s": float(sum(h["seconds"] for h in history)),
        "hardware": hardware or f"{env['cpu']}, 1 thread per run (CPU)", "date": env["date"], "torch": env["torch"],
        "parameters": model.n_parameters(), "label_scale": model.config.output_scale,
        "train_config": config,
        "test_metrics": metrics_json(result),
        "test_metrics_rotated_reflected": metrics_json(rotated),
        "rotation": rotation.tolist(),
    }
    atomic_write_text(PRETRAINED / f"{task}.json", json.dumps(card, indent=1) + "\n")
    o, r = result["overall"], rotated["overall"]
    md = (f"# Model card: GMTNet, {task}\n\n"
          f"- data: {card['data']}; trained on the train split ({card['n_train']} crystals), best epoch "
          f"{card['best_epoch']} of {card['epochs']} chosen on the val split; preset `{card['preset']}`, "
          f"{card['parameters']:,} parameters\n"
          f"- training: {card['training_wall_s'] / 60:.0f} min on {card['hardware']}, {card['date'][:10]}\n"
          f"- test split ({len(test)} crystals), `gmtnet evaluate`:\n\n{metrics_table(result, model.ttype.unit)}\n"
          f"- same test set in a random rotated and reflected frame: Fnorm {r.fnorm:.4f} (original {o.fnorm:.4f}), "
          f"zero success {r.zero_success}, equality success {r.equality_success}\n")
    atomic_write_text(PRETRAINED / f"{task}.md", md)
    print(md)


if __name__ == "__main__":
    main(*sys.argv[1:4])
