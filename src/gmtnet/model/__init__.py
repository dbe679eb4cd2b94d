"""The GMTNet network (paper sections 3.2-3.4): layers, tensor heads, symmetry enforcement.

    from gmtnet.model import build_model, load_model, save_model
    model = build_model("elastic")
    tensors = model.predict(structures)   # (N, 3, 3, 3, 3), each in its structure's frame
"""

from gmtnet.model.config import ModelConfig
from gmtnet.model.io import build_model, load_model, save_model
from gmtnet.model.network import GMTNet

__all__ = ["ModelConfig", "GMTNet", "build_model", "load_model", "save_model"]
