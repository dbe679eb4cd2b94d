"""Hyperparameters of GMTNet, with the paper's values (appendix A.4) as defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gmtnet.graph.cutoff import ENVELOPE_BAND, RADIUS_WIDTH
from gmtnet.graph.neighbors import GRAPHS
from gmtnet.tensors import TENSOR_TYPES, get_tensor_type
from gmtnet.tensors.bounds import has_bound
from gmtnet.utils.settings import SettingsError, at_least, check_settings, one_of, positive


@dataclass
class ModelConfig:
    """Everything needed to rebuild a GMTNet (saved with its weights).

    Attributes:
        task: tensor type name ("dielectric", "piezoelectric", "elastic").
        k: neighbour rank that sets each atom's graph radius (paper: 16).
        node_dim: width of the invariant node features.
        edge_dim: width of the invariant edge features f^e (paper: 128).
        rbf_bins, rbf_min, rbf_max, rbf_c: -c/|v| expanded on rbf_bins Gaussians in [min, max]
            (paper: 512 on [-4, 0], c = 0.75).
        n_invariant: Comformer-style invariant layers (paper: 2).
        n_equivariant: TFN-style equivariant layers (paper: 3).
        lmax: highest rotation order of the equivariant features (paper: 3, elastic 4);
            None picks the paper's value for the task.
        inner_lmax: highest rotation order of the features between equivariant layers (all
            but the last); None means lmax. Lower values make the per-edge tensor products much
            cheaper while the last layer still reaches lmax (needed by the head: piezoelectric
            l = 3, elastic l = 4).
        message_mul: if set, each equivariant layer first maps its input linearly to this many
            channels per irrep before the per-edge tensor product (the per-edge work scales with
            it); None feeds the input as it is (the paper's form).
        mul_scalars: channels of each scalar irrep (0e and 0o).
        mul_vectors: channels of each l >= 1 irrep, both parities.
        radial_hidden: hidden width of the MLP that turns f^e into filter weights.
        symmetrize_features: average crystal features over the point group (paper eq. 10).
        project_output: project the output tensor onto the crystal's invariant subspace (float64
            Reynolds projector, exact zeros and equalities).
        snap_output: at prediction time, set forced zeros to exactly 0.0 and forced equalities to
            their signed mean (the pattern is read off the float64 projector with a 1e-8
            tolerance): the exact counterpart of the paper's tolerance-guided adjustment (A.4).
        physical_bounds: map the head's output through ``gmtnet.tensors.bounds.bounded`` so that
            every prediction obeys the type's stability bound (permittivity eigenvalues above 1,
            a positive-definite stiffness) while staying exactly equivariant and symmetric. On by
            default for new dielectric and elastic models (``preset``); off in files saved
            without the setting, and for tensors of unstable crystals. No effect on types without
            a bound (piezoelectric).
        graph: "knn", the paper's k-NN radius graph (every neighbour within each atom's k-th
            neighbour distance, full weight), or "smooth": every message weighted by an envelope
            that falls smoothly to 0 beyond each atom's soft k-th neighbour distance, so that the
            output is a continuous (C^2) function of positions and lattice
            (``gmtnet.graph.cutoff``). "smooth" for new models (``preset``); "knn" in files saved
            without the setting.
        envelope_band, radius_width: the smooth graph's envelope band (relative) and soft-radius
            width (Angstrom), see ``gmtnet.graph.cutoff``.
        parts: predict a tensor that is a sum of parts (``TensorType.parts``: the dielectric
            tensor's electronic and ionic parts) part by part, each from its own head on the
            shared crystal features and, with ``physical_bounds``, through its own bound
            (electronic permittivity eigenvalues above 1, ionic ones above 0), the tensor being
            their sum. The model's outputs are then the tensor and its parts
            (``TensorModel.output_names``). On for new dielectric models (``preset``); off in
            files saved without the setting.
        part_scales: with ``parts``, each part's scale (label units; training sets it to the
            RMS of the part's entries above its lower bound); None: 1 for every part.
        refine_structure: symmetrize the input structure first ("struct correction": the
            structure is moved within symprec onto its exactly symmetric form, same frame and
            atom order). On for new models (``preset``); off in files saved without the setting.
        symprec: spglib tolerance for the point group and refinement, Angstrom.
        output_scale: the head's output is multiplied by this (label units); training sets it
            to the RMS of the training labels' entries so that the network works on O(1) numbers.
        edge_product: "fused" (default) or "e3nn": which implementation of the per-edge tensor
            product runs. Both compute the same function with the same weights; "fused" is
            gmtnet's kernel (several times faster to train on CPU), "e3nn" the reference.
        seed: seed of the initial weights.
        dtype: "float32" (default) or "float64". The e3nn modules are always built in float64
            (their Clebsch-Gordan coefficients are computed at construction), then cast, so a
            float64 model is equivariant to ~1e-15.
    """

    task: str = "dielectric"
    k: int = 16
    node_dim: int = 128
    edge_dim: int = 128
    rbf_bins: int = 512
    rbf_min: float = -4.0
    rbf_max: float = 0.0
    rbf_c: float = 0.75
    n_invariant: int = 2
    n_equivariant: int = 3
    lmax: int | None = None
    inner_lmax: int | None = None
    message_mul: int | None = None
    mul_scalars: int = 32
    mul_vectors: int = 8
    radial_hidden: int = 64
    symmetrize_features: bool = True
    project_output: bool = True
    snap_output: bool = True
    physical_bounds: bool = False
    graph: str = "knn"
    envelope_band: float = ENVELOPE_BAND
    radius_width: float = RADIUS_WIDTH
    parts: bool = False
    part_scales: list[float] | None = None
    refine_structure: bool = False
    symprec: float = 1e-3
    output_scale: float = 1.0
    edge_product: str = "fused"
    seed: int = 0
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    @classmethod
    def preset(cls, name: str, task: str, **overrides) -> "ModelConfig":
        """A named configuration: "paper" (appendix A.4 as printed) or "fast" (same blocks, but
        the equivariant layers before the last carry l <= 2 and each edge product works on 8
        channels per irrep: 3-8x less work per training step on CPU)."""
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}: expected one of {', '.join(PRESETS)}")

        ttype = get_tensor_type(task)
        new_model = {"physical_bounds": has_bound(ttype), "parts": bool(ttype.parts), **NEW_MODEL_DEFAULTS}
        return cls(task=task, **{**new_model, **PRESETS[name], **overrides})

    @property
    def resolved_lmax(self) -> int:
        return self.lmax if self.lmax is not None else (4 if get_tensor_type(self.task).order == 4 else 3)

    def __post_init__(self) -> None:
        """Refuse a value of the wrong type or outside ``MODEL_RULES`` (SettingsError naming it):
        a model of it could not be built, or only by exhausting the machine."""
        check_settings(ModelConfig, self.to_dict(), rules=MODEL_RULES)
        if not self.rbf_min < self.rbf_max:
            raise SettingsError(f"rbf_min must be below rbf_max, got {self.rbf_min} and {self.rbf_max}")

    def to_dict(self) -> dict:
        return asdict(self)


#: Widths, counts and orders up to these limits build networks of at most a few GB; beyond them a
#: file's settings are refused before anything is allocated.
MAX_WIDTH = 4096
MODEL_RULES = {
    "task": one_of(*TENSOR_TYPES),
    "k": at_least(1, 256),
    "node_dim": at_least(1, MAX_WIDTH), "edge_dim": at_least(1, MAX_WIDTH), "rbf_bins": at_least(1, MAX_WIDTH),
    "rbf_c": positive(), "n_invariant": at_least(0, 32), "n_equivariant": at_least(1, 32),
    "lmax": at_least(1, 8), "inner_lmax": at_least(0, 8), "message_mul": at_least(1, MAX_WIDTH),
    "mul_scalars": at_least(1, MAX_WIDTH), "mul_vectors": at_least(1, MAX_WIDTH), "radial_hidden": at_least(1, MAX_WIDTH),
    "graph": one_of(*GRAPHS), "envelope_band": positive(1.0), "radius_width": positive(1.0),
    "symprec": positive(1.0), "output_scale": positive(), "part_scales": positive(),
    "edge_product": one_of("fused", "e3nn"), "seed": at_least(0, 2 ** 63 - 1), "dtype": one_of("float32", "float64"),
}


# settings every new model gets whatever its preset; a file saved without them keeps the dataclass
# defaults (its behaviour when it was trained)
NEW_MODEL_DEFAULTS = {"graph": "smooth", "refine_structure": True}

PRESETS: dict[str, dict] = {
    "paper": {},
    "fast": {"inner_lmax": 2, "message_mul": 8},
}
