"""Saving and loading models: one file with the weights, the hyperparameters and the architecture."""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch

from gmtnet.errors import GmtnetError
from gmtnet.model.baselines import ETGNN, BaselineConfig, MEGNet
from gmtnet.model.config import ModelConfig
from gmtnet.model.ensemble import EnsembleModel
from gmtnet.model.network import GMTNet
from gmtnet.tensors import get_tensor_type
from gmtnet.utils.io import atomic_write_bytes

FORMAT = "gmtnet-model"
VERSION = 1
ENSEMBLE = "ensemble"


def _architectures() -> dict:
    """architecture name -> (model class, config class)."""
    return {"gmtnet": (GMTNet, ModelConfig), "megnet": (MEGNet, BaselineConfig), "etgnn": (ETGNN, BaselineConfig)}


def architecture_of(model) -> str:
    for name, (cls, _) in _architectures().items():
        if type(model) is cls:
            return name
    raise GmtnetError(f"unknown model class {type(model).__name__}")


def build_model(task: str, architecture: str = "gmtnet", preset: str | None = None, **hyperparameters):
    """A freshly initialised model (seeded by ``seed``, CPU, float32).

    ``architecture`` is "gmtnet" (see ModelConfig, ``preset`` "paper" or "fast") or a baseline
    ("megnet", "etgnn"; see BaselineConfig)."""
    task = get_tensor_type(task).name
    archs = _architectures()
    if architecture not in archs:
        raise GmtnetError(f"unknown model {architecture!r}: expected one of {', '.join(archs)}")
    cls, config_cls = archs[architecture]
    if architecture == "gmtnet":
        return cls(ModelConfig.preset(preset or "paper", task, **hyperparameters))
    return cls(config_cls(task=task, **hyperparameters))


def build_model_from_train_config(cfg, output_scale: float = 1.0, part_scales: list[float] | None = None):
    """The untrained model a TrainConfig describes, with its output scale set; a GMTNet predicts
    its tensor part by part (``ModelConfig.parts``) exactly when ``part_scales`` are given."""
    kw = dict(cfg.model_overrides)
    kw.setdefault("seed", cfg.seed)
    if cfg.model == "gmtnet":
        kw.update(parts=part_scales is not None, part_scales=part_scales)
        return build_model(cfg.task, "gmtnet", preset=cfg.preset, output_scale=output_scale, **kw)
    return build_model(cfg.task, cfg.model, group_average=cfg.group_average, output_scale=output_scale, **kw)


def _model_blob(model, metadata: dict) -> dict:
    """What a model file holds: architecture, hyperparameters, weights (members for an ensemble)."""
    blob = {"format": FORMAT, "version": VERSION, "tensor_type": model.ttype.name, "metadata": metadata}
    if isinstance(model, EnsembleModel):
        members = [_model_blob(m, getattr(m, "metadata", {})) for m in model.members]
        return {**blob, "architecture": ENSEMBLE, "members": members}
    return {**blob, "architecture": architecture_of(model), "config": model.config.to_dict(),
            "state_dict": model.state_dict()}


def save_model(model, path: str | Path, **metadata) -> Path:
    """Write the model (or EnsembleModel) atomically; ``metadata`` (e.g. training history) is
    stored alongside."""
    buffer = io.BytesIO()
    torch.save(_model_blob(model, metadata), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_data_only(path: Path, what: str, hint: str = ""):
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings, lists and dicts only, so
    a crafted file cannot run code. GmtnetError naming ``what`` for a file torch cannot read that
    way (truncated, corrupted, or holding other objects); ``hint`` is added to that message."""
    try:
        with warnings.catch_warnings():  # torch warns about the protocol of foreign pickles
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is this file's problem
        raise GmtnetError(f"{path}: not {what} ({type(exc).__name__}){hint}") from None


def read_model_file(path: str | Path) -> dict:
    """The raw contents of a model file (config, weights, metadata), validated."""
    path = Path(path)
    if not path.is_file():
        raise GmtnetError(f"{path}: no such model file")
    blob = load_data_only(path, "a gmtnet model file")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise GmtnetError(f"{path}: not a gmtnet model file")
    return blob


def _config_from_blob(blob: dict, source: str):
    """(model class, config) of one (non-ensemble) model's file contents; GmtnetError naming
    ``source`` for an unknown architecture or hyperparameter."""
    architecture = blob.get("architecture", "gmtnet")
    archs = _architectures()
    if architecture not in archs:
        raise GmtnetError(f"{source}: unknown architecture {architecture!r} (expected one of {', '.join(archs)})")
    cls, config_cls = archs[architecture]
    config = blob.get("config")
    if not isinstance(config, dict):
        raise GmtnetError(f"{source}: no hyperparameters")
    known = set(getattr(config_cls, "__dataclass_fields__", {}))
    unknown = sorted(set(config) - known) if known else []
    if unknown:
        raise GmtnetError(f"{source}: unknown hyperparameter(s) {', '.join(unknown)} for {architecture}")
    try:
        return cls, config_cls(**config)
    except (TypeError, ValueError) as exc:
        raise GmtnetError(f"{source}: invalid hyperparameters ({exc})") from None


def read_model_config(path: str | Path):
    """The hyperparameters (ModelConfig or BaselineConfig) of a saved model, without building
    it; for an ensemble its first member's (the members share the graph settings)."""
    blob = read_model_file(path)
    if blob.get("architecture", "gmtnet") == ENSEMBLE:
        members = blob.get("members")
        if not isinstance(members, list) or not members or not isinstance(members[0], dict):
            raise GmtnetError(f"{path}: an ensemble file without members")
        blob = members[0]
    return _config_from_blob(blob, str(path))[1]


#: Hyperparameters that do not change the modules a model is built of (only its initial weights or
#: the scale of its output), so that ensemble members differing in them share one construction.
_NON_STRUCTURAL = ("seed", "output_scale")


def _same_structure(a, b) -> bool:
    return type(a) is type(b) and {**a.to_dict(), **dict.fromkeys(_NON_STRUCTURAL)} == \
        {**b.to_dict(), **dict.fromkeys(_NON_STRUCTURAL)}


def _model_from_blob(blob: dict, source: str = "model file"):
    """The model a file's contents describe; GmtnetError naming ``source`` and the problem when
    the architecture, a hyperparameter or a weight is not what this version of gmtnet builds.
    Ensemble members of the same structure are built once and copied (building e3nn's modules
    costs far more than copying them), then each gets its own hyperparameters and weights."""
    architecture = blob.get("architecture", "gmtnet")
    if architecture == ENSEMBLE:
        members = blob.get("members")
        if not isinstance(members, list) or not members:
            raise GmtnetError(f"{source}: an ensemble file without members")
        configs = []
        for member in members:
            if not isinstance(member, dict) or member.get("architecture", "gmtnet") == ENSEMBLE:
                raise GmtnetError(f"{source}: an ensemble member is not a single model")
            configs.append(_config_from_blob(member, source))
        models = [None] * len(members)
        for i, (cls, config) in enumerate(configs):
            if models[i] is None:
                models[i] = _build(cls, config, source)
                for j in range(i + 1, len(members)):  # copies of the untrained model for its twins
                    if models[j] is None and _same_structure(configs[j][1], config):
                        models[j] = copy.deepcopy(models[i])
                        models[j].config = configs[j][1]
        for model, member in zip(models, members):
            _load_weights(model, member, source)
            model.metadata = member.get("metadata", {})
        model = EnsembleModel(models)
    else:
        cls, config = _config_from_blob(blob, source)
        model = _build(cls, config, source)
        _load_weights(model, blob, source)
    model.metadata = blob.get("metadata", {})
    return model


def _build(cls, config, source: str):
    try:
        return cls(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise GmtnetError(f"{source}: invalid hyperparameters ({exc})") from None


def _load_weights(model, blob: dict, source: str) -> None:
    """Load a single model's weights from its file contents, refusing missing, unexpected or
    misshapen ones by name."""
    architecture = blob.get("architecture", "gmtnet")
    state = blob.get("state_dict")
    if not isinstance(state, dict):
        raise GmtnetError(f"{source}: no weights")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        detail = "; ".join(part for part in (f"missing {', '.join(missing[:3])}" if missing else "",
                                             f"unexpected {', '.join(unexpected[:3])}" if unexpected else "") if part)
        raise GmtnetError(f"{source}: weights do not fit the {architecture} architecture ({detail})")
    wrong = [k for k in own if not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape]
    if wrong:
        raise GmtnetError(f"{source}: weight {wrong[0]} has the wrong shape or type")
    broken = [k for k in own if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
    if broken:
        raise GmtnetError(f"{source}: weight {broken[0]} holds NaN or infinite values")
    model.load_state_dict(state)


def transfer_weights(model, path: str | Path, member: int | None = None) -> tuple[list[str], list[str]]:
    """Initialise ``model`` from the saved single model at ``path`` (transfer learning), or from
    member ``member`` (1 is the first) of a saved ensemble: every parameter and buffer whose name
    and shape match is copied, the rest (for another task: the last equivariant layer and the
    output heads) keeps its value. Returns (copied, kept) names."""
    blob = read_model_file(path)
    if blob.get("architecture", "gmtnet") == ENSEMBLE:
        members = blob.get("members") or []
        if member is None or not 1 <= member <= len(members):
            raise GmtnetError(f"{path} is an ensemble of {len(members)} models: choose one to start from "
                              f"(--init-member 1 to {len(members)})")
        blob = members[member - 1]
    elif member is not None:
        raise GmtnetError(f"{path} is a single model: --init-member is for ensemble files")
    if blob.get("architecture", "gmtnet") != architecture_of(model):
        raise GmtnetError(f"{path}: a {blob.get('architecture', 'gmtnet')} model cannot initialise a {architecture_of(model)}")
    source = blob["state_dict"]
    own = model.state_dict()
    copied = [k for k, v in own.items() if k in source and source[k].shape == v.shape]
    if not copied:
        raise GmtnetError(f"{path}: no parameter matches the model (another preset?)")
    model.load_state_dict({**own, **{k: source[k].to(own[k].dtype) for k in copied}})
    return copied, [k for k in own if k not in copied]


def load_model(path: str | Path, map_location="cpu"):
    """Rebuild a saved model or ensemble (no trainer needed); GmtnetError naming the problem for
    a file that is not a gmtnet model of a known architecture."""
    return _model_from_blob(read_model_file(path), str(path)).to(map_location)


def load_ensemble(paths: list[str | Path]):
    """The EnsembleModel of several model files of one task (each member's metadata records its
    ``source_file``)."""
    models = [load_model(p) for p in paths]
    for p, m in zip(paths, models):
        m.metadata = {**m.metadata, "source_file": str(p)}
    return EnsembleModel(models)


def combine_models(paths: list[str | Path], out: str | Path, **metadata) -> Path:
    """Write one ensemble file (see gmtnet.model.ensemble) from several model files of one task."""
    return save_model(load_ensemble(paths), out, **metadata)
