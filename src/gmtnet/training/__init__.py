"""Training and evaluation: preprocessing cache, the training loop, the paper's four metrics.

    from gmtnet.training import TrainConfig, train, evaluate_model
    result = train(TrainConfig(task="dielectric", epochs=200, out="runs/diel"))
"""

from gmtnet.training.config import TrainConfig
from gmtnet.training.evaluate import evaluate_model, evaluate_predictions
from gmtnet.training.metrics import TensorMetrics, tensor_metrics
from gmtnet.training.trainer import train

__all__ = ["TrainConfig", "train", "evaluate_model", "evaluate_predictions", "TensorMetrics", "tensor_metrics"]
