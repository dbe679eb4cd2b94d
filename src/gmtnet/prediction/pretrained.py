"""The models shipped inside the package (``gmtnet/pretrained/<task>.pt``) and their model cards."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from gmtnet.errors import GmtnetError
from gmtnet.model import load_model
from gmtnet.model.io import read_model_config
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


def _existing_pretrained_path(task: str) -> Path:
    path = pretrained_path(task)
    if not path.is_file():
        raise GmtnetError(f"no shipped model for {task!r} ({path} is missing)")
    return path


@lru_cache(maxsize=None)
def pretrained_config(task: str):
    """The shipped model's hyperparameters (its graph settings), read without building it."""
    return read_model_config(_existing_pretrained_path(task))


@lru_cache(maxsize=None)
def load_pretrained(task: str):
    """The shipped GMTNet for ``task`` (loaded once per process, CPU, eval mode)."""
    return load_model(_existing_pretrained_path(task)).eval()
