"""Prediction with the shipped models: tensors, derived properties, pictures.

    import gmtnet
    results = gmtnet.predict(["Si.cif", atoms, structure], task="all")
    results[0].tensors["elastic"]           # (3, 3, 3, 3) GPa, in the input's Cartesian frame
    results[0].properties["elastic"]["k_vrh"]
"""

from gmtnet.prediction.predictor import CrystalPrediction, Predictor, predict
from gmtnet.prediction.pretrained import load_pretrained, model_card, pretrained_path

__all__ = ["predict", "Predictor", "CrystalPrediction", "load_pretrained", "model_card", "pretrained_path"]
