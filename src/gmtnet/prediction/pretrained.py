"""The models shipped inside the package (``gmtnet/pretrained/<task>.pt``) and their model cards."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from gmtnet.errors import GmtnetError
from gmtnet.model import load_model
from gmtnet.tensors import get_tensor_type

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def pretrained_path(task: str) -> Path:
    """Path of the shipped model file for ``task``."""
    return PRETRAINED_DIR / f"{get_tensor_type(task).name}.pt"


def model_card(task: str) -> dict:
    """The shipped model's card (data, split, epochs, hardware, test metrics) as a dict."""
    path = PRETRAINED_DIR / f"{get_tensor_type(task).name}.json"
    if not path.is_file():
        raise GmtnetError(f"no model card for {task!r} in {PRETRAINED_DIR}")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def load_pretrained(task: str):
    """The shipped GMTNet for ``task`` (loaded once per process, CPU, eval mode)."""
    path = pretrained_path(task)
    if not path.is_file():
        raise GmtnetError(f"no shipped model for {task!r} ({path} is missing)")
    return load_model(path).eval()
