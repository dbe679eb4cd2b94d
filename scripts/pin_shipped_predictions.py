"""Write tests/fixtures/shipped_predictions.json: the shipped models' tensors for the crystals in
examples/ and the ideal crystals of gmtnet.testing.

    python scripts/pin_shipped_predictions.py

tests/test_shipped_reference.py checks that the current code predicts the same tensors to 1e-6
relative: a change meant to preserve behaviour (a refactor, a faster kernel) must pass it; a change
meant to alter predictions (new shipped models) rewrites the file with this script.
"""

from __future__ import annotations

import json
from pathlib import Path

from gmtnet.prediction import Predictor
from gmtnet.testing import pinned_crystals

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "shipped_predictions.json"


def main() -> None:
    inputs = pinned_crystals(ROOT / "examples")
    results = Predictor("all").predict(list(inputs.values()))
    bad = [r.source for r in results if not r.ok]
    if bad:
        raise SystemExit(f"not predicted: {bad}")
    pinned = {name: {task: t.tolist() for task, t in r.tensors.items()} for name, r in zip(inputs, results)}
    OUT.write_text(json.dumps(pinned, indent=0) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {len(pinned)} crystals")


if __name__ == "__main__":
    main()
