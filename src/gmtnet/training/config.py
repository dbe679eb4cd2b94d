"""Settings of one training run (the paper's protocol by default, section 5.1 and appendix A.4)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from gmtnet.graph import GRAPHS
from gmtnet.training.losses import LOSSES
from gmtnet.utils.io import parse_toml

MODELS = ("gmtnet", "megnet", "etgnn")
#: Settings of how a run executes, not of what it computes: a resumed run may change them.
EXECUTION_SETTINGS = ("device", "threads", "compile", "orbits")


def _check_int(name: str, value, minimum: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{f' ({why})' if why else ''}, got {value!r}")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved in every checkpoint so a run can be resumed.

    Attributes:
        task: "dielectric", "piezoelectric" or "elastic".
        model: "gmtnet", "megnet" or "etgnn" (the last two are the paper's baselines).
        preset: GMTNet configuration ("fast", the default, or "paper": appendix A.4 as printed;
            see ModelConfig.preset).
        group_average: baselines only: average the output over the crystal's point group (-GA).
        epochs, batch_size, lr: paper: 200, 64, 1e-3.
        weight_decay: AdamW decay (paper 1e-5), not applied to biases and normalisation weights.
        lr_power, lr_end: polynomial decay lr(t) = (lr - lr_end) (1 - t/T)^power + lr_end over all
            T optimizer steps.
        loss: "huber" (the paper's: Huber on every tensor entry, averaged) or "fnorm" (the mean
            over crystals of the Frobenius norm of the error: the evaluation's Fnorm metric
            itself, an L1-type loss per crystal that is not pulled by the few crystals with huge
            labels). Both work on labels divided by the label scale.
        huber_delta: Huber loss threshold, on labels divided by the label scale (RMS of the
            training labels' entries), so one setting fits all three tasks.
        source, data_root: where the curated data come from (see gmtnet.data.load_dataset).
        limit: use only the first N training crystals (quick checks, learning curves).
        val_limit: use only the first N validation crystals (quick checks).
        seed: seeds weights, batch order and everything random; CPU runs are reproducible.
        device: "cpu" or "cuda".
        threads: torch CPU threads (0 leaves torch's default).
        compile: compile the model's hot kernels with torch.compile (needs a C++ compiler on CPU;
            costs about a minute once, then training steps are about 1.6x faster on CPU).
        orbits: GMTNet's training batches at one atom per orbit of symmetry-equivalent atoms, with
            batch normalisation counting each representative for its whole orbit: the same steps
            (the same function and gradients for symmetric crystals) with 2-4x fewer atoms and
            edges. On by default: new models symmetrize their structures (``refine_structure``),
            for which the steps equal atom-by-atom training to float rounding (tested); False
            (``--all-atoms``) trains atom by atom, as the shipped models and the paper's tables
            were. Validation always runs atom by atom.
        init_from: a saved model (another run's best.pt, any task, same architecture and preset)
            whose parameters of matching name and shape initialise the network: transfer learning,
            e.g. dielectric -> piezoelectric. The rest (last layer, head) starts at random.
        init_member: with an ensemble file as ``init_from``, which member (1 is the first) to
            start from.
        parts: for a task whose tensor is a sum of parts (dielectric: electronic + ionic),
            predict it part by part (``ModelConfig.parts``) and supervise each part where its
            label is known. None (default): whenever some training record has parts; False:
            never; True: refused when no training record has them.
        part_weight: weight of each part's loss against the tensor's (both in units of the
            tensor's label scale).
        exclude: "TASK:SPLIT[+SPLIT...]": leave out of this run's train and validation crystals
            every material id of those splits of TASK's data, e.g. "piezoelectric:val+test" when
            pre-training on dielectric for a piezoelectric fine-tuning that is evaluated there.
        max_label_norm: leave out of this run's train and validation crystals every label whose
            Frobenius norm exceeds this (label units; None keeps all). A screen for DFT labels far
            outside the physical range (e.g. piezoelectric tensors of 68 and 88 C/m^2, where the
            largest measured crystals reach about 20): they would otherwise dominate the label
            scale, the loss and, in the validation mean, the choice of checkpoint. The test split
            is never screened.
        edge_noise: standard deviation (Angstrom) of Gaussian noise added to every edge vector of
            every training batch, drawn anew for each batch (seeded); 0 (default) adds none. A
            smoothness regulariser: in expectation it adds edge_noise^2 times the squared
            gradient of the loss with respect to the edge vectors, so the network learns outputs
            that do not hinge on changes of its geometry far below the noise. Validation and
            prediction never add noise.
        out: run directory (checkpoints, logs).
        model_overrides: extra ModelConfig (or baseline) hyperparameters.
    """

    task: str = "dielectric"
    model: str = "gmtnet"
    preset: str = "fast"
    group_average: bool = False
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_power: float = 1.0
    lr_end: float = 1e-5
    loss: str = "huber"
    huber_delta: float = 1.0
    source: str = "mp"
    data_root: str | None = None
    limit: int | None = None
    val_limit: int | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    compile: bool = False
    orbits: bool = True
    init_from: str | None = None
    init_member: int | None = None
    parts: bool | None = None
    part_weight: float = 1.0
    exclude: str | None = None
    max_label_norm: float | None = None
    out: str = "runs/run"
    model_overrides: dict = field(default_factory=dict)
    edge_noise: float = 0.0

    def __post_init__(self) -> None:
        """Refuse values no run can use, each with a line naming the setting (ValueError)."""
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}: expected one of {', '.join(MODELS)}")
        if self.max_label_norm is not None and not self.max_label_norm > 0:
            raise ValueError(f"max_label_norm must be positive, got {self.max_label_norm}")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 2, "batch normalisation needs two crystals per batch")
        _check_int("threads", self.threads, 0)
        for name in ("limit", "val_limit", "init_member"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        for name, low, strict in (("lr", 0.0, True), ("weight_decay", 0.0, False), ("huber_delta", 0.0, True),
                                  ("lr_end", 0.0, False), ("lr_power", 0.0, True), ("edge_noise", 0.0, False),
                                  ("part_weight", 0.0, False)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and (value > low if strict else value >= low)):
                raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ValueError(f"unknown device {self.device!r}: expected cpu, cuda or cuda:N")
        if self.parts is not None and not isinstance(self.parts, bool):
            raise ValueError(f"parts must be true, false or unset, got {self.parts!r}")
        if self.parts and self.model != "gmtnet":
            raise ValueError("parts is a GMTNet setting (the baselines predict the tensor only)")
        if self.init_member is not None and not self.init_from:
            raise ValueError("init_member chooses a member of the init_from ensemble: give init_from too")
        if self.edge_noise and self.model != "gmtnet":
            raise ValueError("edge_noise is a GMTNet setting (the baselines' batches are not perturbed)")
        graph = self.model_overrides.get("graph", "smooth") if isinstance(self.model_overrides, dict) else "smooth"
        if graph not in GRAPHS:
            raise ValueError(f"unknown graph {graph!r}: expected one of {', '.join(GRAPHS)}")

    def to_dict(self) -> dict:
        return asdict(self)


def read_config_file(path: str | Path) -> dict:
    """The TrainConfig settings in a JSON or TOML file (a run's config.json works as it is).
    ValueError naming the file for anything that is not a table of known settings."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".toml":
            settings = parse_toml(text)
        else:
            settings = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} ({exc})") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a table of training settings")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{path}: unknown training setting(s) {', '.join(unknown)}")
    return settings
