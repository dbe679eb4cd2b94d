"""gmtnet: O(3)-equivariant, space-group-exact prediction of crystal tensor properties.

Layers (each a sub-package):

- ``gmtnet.tensors``   tensor types, Voigt/irreps conversions, the O(3) action
- ``gmtnet.symmetry``  point groups from spglib, Reynolds projectors, forced patterns, refinement
- ``gmtnet.data``      structures, curation, the benchmark datasets and their splits
- ``gmtnet.graph``     the symmetry-informed crystal graph and atom features
- ``gmtnet.model``     GMTNet and the baselines (MEGNet, ETGNN)
- ``gmtnet.training``  training loop, the paper's metrics, evaluation, the paper's tables
- ``gmtnet.prediction`` shipped models, ``predict``, derived properties, pictures
- ``gmtnet.cli``       the ``gmtnet`` command

``gmtnet.predict(structures, task="all")`` is the one-line entry point.
"""

__version__ = "0.1.0"


def predict(structures, task: str = "all", as_pymatgen: bool = False, models: dict | None = None):
    """Predict tensors with the shipped models; see gmtnet.prediction.predict."""
    from gmtnet.prediction import predict as _predict

    return _predict(structures, task=task, as_pymatgen=as_pymatgen, models=models)
