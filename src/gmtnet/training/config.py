"""Settings of one training run (the paper's protocol by default, section 5.1 and appendix A.4)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gmtnet.graph import GRAPHS
from gmtnet.training.losses import LOSSES
from gmtnet.utils.io import parse_toml
from gmtnet.utils.settings import SettingsError, at_least, check_settings, one_of, positive

MODELS = ("gmtnet", "megnet", "etgnn")
#: Settings of how a run executes, not of what it computes: a resumed run may change them.
EXECUTION_SETTINGS = ("device", "threads", "compile", "orbits")



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
            labels), "relative" (each crystal's Frobenius error over its label's norm plus
            ``loss_floor``: every crystal weighs alike whatever its size) or "hybrid" (fnorm plus
            relative); see ``gmtnet.training.losses``. All work on labels divided by the label
            scale.
        loss_floor: the floor of the "relative" and "hybrid" losses, in label units (default
            0.05: C/m^2 for piezoelectric tensors, the size below which a label's direction is
            noise); labels smaller than it weigh as if they had this norm.
        huber_delta: Huber loss threshold, on labels divided by the label scale (RMS of the
            training labels' entries), so one setting fits all three tasks.
        source, data_root: where the curated data come from (see gmtnet.data.load_dataset).
        data_path: the data file of source "file" (a JSON or CSV of your own).
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
    loss_floor: float = 0.05
    source: str = "mp"
    data_root: str | None = None
    data_path: str | None = None
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
        """Refuse values no run can use, each with a line naming the setting (SettingsError, a
        ValueError): a wrong type (a bool that is a string, a seed that is not a number), a value
        outside ``TRAIN_RULES``, a ``model_overrides`` key the model does not have or a value of
        it the model refuses."""
        check_settings(TrainConfig, self.to_dict(), rules=TRAIN_RULES)
        if self.loss not in LOSSES:
            raise SettingsError(f"unknown loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if self.model not in MODELS:
            raise SettingsError(f"unknown model {self.model!r}: expected one of {', '.join(MODELS)}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise SettingsError(f"unknown device {self.device!r}: expected cpu, cuda or cuda:N")
        if "file" in self.source.split("+") and not self.data_path:
            raise SettingsError("source file needs the data file: give its path (--path, data_path)")
        if self.parts and self.model != "gmtnet":
            raise SettingsError("parts is a GMTNet setting (the baselines predict the tensor only)")
        if self.init_member is not None and not self.init_from:
            raise SettingsError("init_member chooses a member of the init_from ensemble: give init_from too")
        if self.edge_noise and self.model != "gmtnet":
            raise SettingsError("edge_noise is a GMTNet setting (the baselines' batches are not perturbed)")
        graph = self.model_overrides.get("graph", "smooth")
        if graph not in GRAPHS:
            raise SettingsError(f"unknown graph {graph!r}: expected one of {', '.join(GRAPHS)}")
        self._check_model_overrides()

    def _check_model_overrides(self) -> None:
        """The overrides must be settings of the model's configuration with values it accepts."""
        from gmtnet.model.baselines import BASELINE_RULES, BaselineConfig
        from gmtnet.model.config import MODEL_RULES, ModelConfig

        config_cls, rules = (ModelConfig, MODEL_RULES) if self.model == "gmtnet" else (BaselineConfig, BASELINE_RULES)
        check_settings(config_cls, self.model_overrides, "model_overrides", rules)
        fixed = sorted(set(self.model_overrides) & set(OWN_SETTINGS))
        if fixed:
            raise SettingsError(f"model_overrides: {', '.join(fixed)} {'is' if len(fixed) == 1 else 'are'} set by the "
                                "run itself, not by overrides")

    def to_dict(self) -> dict:
        return asdict(self)


#: Settings of the model that the run sets itself (from its data, or from its own options).
OWN_SETTINGS = ("task", "output_scale", "parts", "part_scales")
TRAIN_RULES = {
    "preset": one_of("fast", "paper"), "epochs": at_least(1, 1_000_000),
    "batch_size": at_least(2, 1_000_000, why="batch normalisation needs two crystals per batch"),
    "lr": positive(), "weight_decay": at_least(0.0), "lr_power": positive(), "lr_end": at_least(0.0),
    "huber_delta": positive(), "loss_floor": positive(), "limit": at_least(1), "val_limit": at_least(1), "seed": at_least(0, 2 ** 63 - 1),
    "threads": at_least(0, 4096), "init_member": at_least(1), "part_weight": at_least(0.0),
    "max_label_norm": positive(), "edge_noise": at_least(0.0, 10.0),
}
#: Largest configuration file read (bytes): settings are a few hundred bytes.
MAX_CONFIG_BYTES = 1_000_000


def read_config_file(path: str | Path) -> dict:
    """The TrainConfig settings in a JSON or TOML file (a run's config.json works as it is),
    each checked against its type and range (``TrainConfig``'s, and for ``model_overrides`` the
    model's). SettingsError (a ValueError) naming the file and the setting for anything else."""
    path = Path(path)
    kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise SettingsError(f"{path}: {path.stat().st_size:,} bytes is no configuration (limit {MAX_CONFIG_BYTES:,})")
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
    try:
        settings = parse_toml(text) if kind == "TOML" else json.loads(text)
    except RecursionError:
        raise SettingsError(f"{path}: not a configuration (lists or tables nested too deeply)") from None
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid {kind} ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    check_settings(TrainConfig, settings, str(path), TRAIN_RULES)
    try:
        TrainConfig(**{"task": "dielectric", **settings})  # ranges and the model overrides, named for this file
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return settings
