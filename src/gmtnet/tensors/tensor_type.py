"""Description of a Cartesian crystal tensor property: order, index symmetry, parity, Voigt form.

A ``TensorType`` is all the rest of gmtnet needs to know about a property: the network head, the
symmetry projectors, the Voigt conversions and the metrics are written once against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np

from gmtnet.tensors.irreps import formula_irreps, change_of_basis


@dataclass(frozen=True)
class TensorType:
    """A Cartesian tensor property of a crystal.

    Attributes:
        name: short name used on the command line ("dielectric", ...).
        order: number of Cartesian indices (2, 3, 4, ...).
        formula: index symmetry in e3nn ``CartesianTensor`` syntax, e.g. ``"ijk=ikj"``.
        unit: unit of the tensor's entries, for display ("", "C/m^2", "GPa").
        voigt_pairs: index pairs contracted in Voigt notation, e.g. ``((1, 2),)`` for piezo.
            ``None`` for a type with no Voigt form.
        axial: True for an axial (pseudo) tensor, which picks up det(R) under an improper
            rotation. All three built-in properties are polar (False).
        symbol: letter used to name components (``"C"`` gives C11, C12, ...).
        response: formula of the field the crystal answers with (D: ``"i"``, stress: ``"ij=ji"``).
        perturbation: formula of the applied field (E: ``"i"``, strain: ``"ij=ji"``). The tensor
            is d(response)/d(perturbation); the model predicts it that way (paper section 3.3).
        lower_bound: for a type whose response and perturbation are the same field, the bound a
            stable crystal's tensor obeys as a symmetric operator on that field: T - lower_bound * I
            is positive definite (permittivity: 1; stiffness: 0). None: no such bound
            (``gmtnet.tensors.bounds``).
        strict_bound: whether the bound is strict (T - lower_bound I positive definite) or not
            (positive semidefinite: the ionic permittivity of a crystal without polar phonons is
            exactly 0).
        parts: names of the tensor types whose sum this tensor is, e.g. the dielectric tensor is
            its electronic (high-frequency) part plus its ionic part. Each part has this type's
            order, index symmetry, Voigt form and parity (so the same forced zeros and equalities)
            and a bound of its own. Empty for a tensor not split into parts.
    """

    name: str
    order: int
    formula: str
    unit: str = ""
    voigt_pairs: tuple[tuple[int, int], ...] | None = None
    axial: bool = False
    symbol: str = "T"
    response: str | None = None
    perturbation: str | None = None
    lower_bound: float | None = None
    strict_bound: bool = True
    parts: tuple[str, ...] = ()
    description: str = field(default="", compare=False)

    def __reduce__(self):
        """Pickle the defining fields only (cached e3nn objects are rebuilt on use, and cannot be
        unpickled), e.g. to send prepared crystals from DataLoader workers."""
        return (self.__class__, tuple(getattr(self, f.name) for f in fields(self)))

    def __post_init__(self) -> None:
        indices = self.formula.split("=")[0].replace("-", "")
        if len(indices) != self.order:
            raise ValueError(
                f"tensor type {self.name!r}: formula {self.formula!r} has {len(indices)} indices "
                f"but order is {self.order}"
            )
        if (self.response is None) != (self.perturbation is None):
            raise ValueError(f"tensor type {self.name!r}: give both response and perturbation, or neither")
        if self.response is not None:
            n_resp = len(self.response.split("=")[0].replace("-", ""))
            n_pert = len(self.perturbation.split("=")[0].replace("-", ""))
            if n_resp + n_pert != self.order:
                raise ValueError(f"tensor type {self.name!r}: response and perturbation orders must add to {self.order}")
        if self.lower_bound is not None and (self.response is None or self.response != self.perturbation):
            raise ValueError(f"tensor type {self.name!r}: a lower bound needs the same response and perturbation")
        if self.voigt_pairs is not None:
            used = [i for pair in self.voigt_pairs for i in pair]
            if len(set(used)) != len(used) or any(not 0 <= i < self.order for i in used):
                raise ValueError(f"tensor type {self.name!r}: invalid voigt_pairs {self.voigt_pairs}")

    def same_form(self, other: "TensorType") -> bool:
        """Whether ``other`` has this type's order, index symmetry, Voigt form and parity: the
        same forced zeros and equalities in every crystal (a part and its whole)."""
        return (self.order, self.formula, self.voigt_pairs, self.axial) == \
            (other.order, other.formula, other.voigt_pairs, other.axial)

    @property
    def shape(self) -> tuple[int, ...]:
        """Full Cartesian shape, (3,) * order."""
        return (3,) * self.order

    @cached_property
    def voigt_shape(self) -> tuple[int, ...]:
        """Shape of the Voigt form: each contracted pair becomes one axis of length 6."""
        if self.voigt_pairs is None:
            raise ValueError(f"tensor type {self.name!r} has no Voigt form")
        contracted = {i for pair in self.voigt_pairs for i in pair}
        firsts = {pair[0] for pair in self.voigt_pairs}
        return tuple(6 if i in firsts else 3 for i in range(self.order) if i not in contracted or i in firsts)

    @cached_property
    def irreps(self):
        """e3nn irreps of the type's independent subspace (e.g. ``1x0e+1x2e`` for dielectric)."""
        return formula_irreps(self.formula)

    @cached_property
    def index_symmetrizer(self) -> np.ndarray:
        """Orthogonal projector (3^n, 3^n), float64, onto tensors obeying the index symmetry."""
        q = change_of_basis(self).reshape(self.irreps.dim, -1).numpy()
        return q.T @ q

    @property
    def n_independent(self) -> int:
        """Number of independent components allowed by the index symmetry alone (6, 18, 21)."""
        return self.irreps.dim


DIELECTRIC = TensorType(
    name="dielectric",
    order=2,
    formula="ij=ji",
    unit="",
    voigt_pairs=((0, 1),),
    symbol="eps",
    response="i",
    perturbation="i",
    lower_bound=1.0,
    parts=("dielectric_electronic", "dielectric_ionic"),
    description="relative dielectric permittivity eps_ij (electronic + ionic), unitless; D_i = eps_ij E_j",
)
DIELECTRIC_ELECTRONIC = TensorType(
    name="dielectric_electronic",
    order=2,
    formula="ij=ji",
    unit="",
    voigt_pairs=((0, 1),),
    symbol="eps",
    response="i",
    perturbation="i",
    lower_bound=1.0,
    description="electronic (high-frequency, clamped-ion) relative permittivity eps_inf_ij, unitless",
)
DIELECTRIC_IONIC = TensorType(
    name="dielectric_ionic",
    order=2,
    formula="ij=ji",
    unit="",
    voigt_pairs=((0, 1),),
    symbol="eps",
    response="i",
    perturbation="i",
    lower_bound=0.0,
    strict_bound=False,
    description="ionic (lattice, polar-phonon) contribution to the static relative permittivity, unitless",
)
PIEZOELECTRIC = TensorType(
    name="piezoelectric",
    order=3,
    formula="ijk=ikj",
    unit="C/m^2",
    voigt_pairs=((1, 2),),
    symbol="e",
    response="i",
    perturbation="ij=ji",
    description="piezoelectric stress tensor e_ijk in C/m^2; D_i = e_ijk strain_jk",
)
ELASTIC = TensorType(
    name="elastic",
    order=4,
    formula="ijkl=jikl=klij",
    unit="GPa",
    voigt_pairs=((0, 1), (2, 3)),
    symbol="C",
    response="ij=ji",
    perturbation="ij=ji",
    lower_bound=0.0,
    description="elastic stiffness C_ijkl in GPa; stress_ij = C_ijkl strain_kl",
)

#: The three tensor properties gmtnet predicts (its tasks).
TENSOR_TYPES: dict[str, TensorType] = {t.name: t for t in (DIELECTRIC, PIEZOELECTRIC, ELASTIC)}
#: The parts some of them are sums of (``TensorType.parts``).
PART_TYPES: dict[str, TensorType] = {t.name: t for t in (DIELECTRIC_ELECTRONIC, DIELECTRIC_IONIC)}

_ALIASES = {"diele": "dielectric", "piezo": "piezoelectric", "elasticity": "elastic"}


def get_tensor_type(task: str | TensorType) -> TensorType:
    """The built-in tensor type named ``task`` (aliases: diele, piezo, elasticity), a task's or a
    part's (e.g. "dielectric_ionic")."""
    if isinstance(task, TensorType):
        return task
    key = _ALIASES.get(str(task).lower(), str(task).lower())
    found = TENSOR_TYPES.get(key) or PART_TYPES.get(key)
    if found is None:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TENSOR_TYPES)}")
    return found


def parent_type(name: str | TensorType) -> TensorType:
    """The task whose part ``name`` is (the type itself for a task)."""
    ttype = get_tensor_type(name)
    for task in TENSOR_TYPES.values():
        if ttype.name in task.parts:
            return task
    return ttype


def part_types(task: str | TensorType) -> tuple[TensorType, ...]:
    """The part types of a task (empty when it is not split into parts)."""
    return tuple(PART_TYPES[name] for name in get_tensor_type(task).parts)
