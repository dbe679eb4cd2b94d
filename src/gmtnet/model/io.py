"""Saving and loading models: one file with the weights, the hyperparameters and the tensor type."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from gmtnet.errors import GmtnetError
from gmtnet.model.config import ModelConfig
from gmtnet.model.network import GMTNet
from gmtnet.utils.io import atomic_write_bytes

FORMAT = "gmtnet-model"
VERSION = 1


def build_model(task: str, **hyperparameters) -> GMTNet:
    """A freshly initialised GMTNet (seeded by ``seed``, CPU, float32); see ModelConfig."""
    from gmtnet.tensors import get_tensor_type

    return GMTNet(ModelConfig(task=get_tensor_type(task).name, **hyperparameters))


def save_model(model: GMTNet, path: str | Path, **metadata) -> Path:
    """Write the model atomically; ``metadata`` (e.g. training history) is stored alongside."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
                "tensor_type": model.ttype.name, "state_dict": model.state_dict(), "metadata": metadata}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_model(path: str | Path, map_location="cpu") -> GMTNet:
    """Rebuild a saved model (no trainer needed)."""
    path = Path(path)
    if not path.is_file():
        raise GmtnetError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise GmtnetError(f"{path}: not a gmtnet model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise GmtnetError(f"{path}: not a gmtnet model file")
    model = GMTNet(ModelConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return model
