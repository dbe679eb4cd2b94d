"""Space group and Cartesian point group of a crystal, from spglib (or moyopy).

Two symmetry backends give the same result apart from crystals that sit at the tolerance:

- ``spglib`` (the default of this module, of curation and of training's preprocessing): the
  benchmark's definition (data curation, evaluation patterns).
- ``moyopy`` (``PREDICTION_BACKEND``, the default of prediction and ``gmtnet symmetry``):
  spglib's Rust successor, 2-5x faster on the benchmark sets and up to 12x on cubic cells (a
  small cubic cell costs spglib 8-30 ms, most of the preprocessing). On the 2,786 crystals of the
  three MP benchmark sets it finds the same point group for all but 4 (0.14%), all of them
  between two groups at symprec 1e-3, and the shipped models' predictions on the test splits
  are identical with either; ``benchmarks/symmetry_backends.py`` measures this.

Frames: every Cartesian matrix here acts on column vectors in the input structure's own Cartesian
frame. With L the lattice vectors as columns and W spglib's integer rotation (fractional basis),
the Cartesian rotation is R = L W L^-1.

Two versions of R are kept:

- ``raw_rotations``: R computed with the input lattice. For a slightly distorted crystal these are
  orthogonal only to ~symprec (up to 3e-4 on the MP benchmark). The data curation's frame check
  uses them, as the benchmark's definition says.
- ``rotations``: R computed with the lattice whose metric tensor is averaged over the group
  (G_sym = mean_W W^T G W) and oriented like the input (polar decomposition). They are orthogonal
  to machine precision, form a group exactly, and equal the raw ones for an ideal crystal. Labels,
  projectors and the model's symmetrization use them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


class SymmetryError(ValueError):
    """spglib could not analyse a structure, or its operations do not form a group."""


def crystal_system_from_number(number: int) -> str:
    """Crystal system of an international space-group number (1-230)."""
    bounds = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
              (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))
    if not 1 <= int(number) <= 230:
        raise ValueError(f"space-group number must be in 1..230, got {number}")
    for upper, name in bounds:
        if number <= upper:
            return name
    raise AssertionError("unreachable")


def symmetrized_lattice(lattice_columns: np.ndarray, lattice_rotations: np.ndarray) -> np.ndarray:
    """Lattice (vectors as columns) with the group-averaged metric, oriented like the input.

    L = U G^(1/2) with U orthogonal (polar decomposition); the result is U G_sym^(1/2), where
    G_sym = mean_W W^T G W. Then L_sym W L_sym^-1 is exactly orthogonal for every W of the group.
    """
    lat = np.asarray(lattice_columns, dtype=float)
    metric = lat.T @ lat
    w = np.asarray(lattice_rotations, dtype=float)
    metric_sym = w.reshape(-1, 3).T @ np.matmul(metric, w).reshape(-1, 3) / len(w)  # sum_n W_n^T G W_n / n
    metric_sym = 0.5 * (metric_sym + metric_sym.T)
    w, v = np.linalg.eigh(np.stack([metric, metric_sym]))  # both square roots from one call
    if np.any(w <= 0):
        raise SymmetryError("lattice metric is not positive definite (degenerate cell)")
    u = lat @ ((v[0] * w[0] ** -0.5) @ v[0].T)  # the orthogonal polar factor of the input lattice
    return u @ ((v[1] * w[1] ** 0.5) @ v[1].T)


def check_group(rotations: np.ndarray, atol: float = 1e-6) -> None:
    """Raise SymmetryError unless the matrices contain the identity and are closed under
    products and inverses (to ``atol``, max-abs)."""
    rots = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)

    def members(mats: np.ndarray) -> np.ndarray:
        """For each matrix in ``mats`` (..., 3, 3): is it (within atol) one of ``rots``?"""
        diff = np.abs(mats[..., None, :, :] - rots).max(axis=(-1, -2))
        return diff.min(axis=-1) < atol

    if not members(np.eye(3)[None])[0]:
        raise SymmetryError("point group has no identity")
    inverse_ok = members(np.linalg.inv(rots))
    if not inverse_ok.all():
        raise SymmetryError(f"point group is not closed under inversion (operation {int(np.argmin(inverse_ok))})")
    product_ok = members(np.einsum("aij,bjk->abik", rots, rots))
    if not product_ok.all():
        a, b = np.argwhere(~product_ok)[0]
        raise SymmetryError(f"point group is not closed under products ({a}, {b})")


def distinct_matrices(ops: np.ndarray) -> np.ndarray:
    """The distinct integer matrices of ``ops`` (n, 3, 3), in lexicographic order (as np.unique
    with axis=0 gives them, at a fraction of its cost for the few dozen operations of a crystal)."""
    ops = np.asarray(ops, dtype=np.int64).reshape(-1, 9)
    distinct = sorted({tuple(row) for row in ops.tolist()})
    return np.array(distinct, dtype=np.int64).reshape(-1, 3, 3)


_KEY_WEIGHTS = 64 ** np.arange(9, dtype=np.int64)


def matrix_keys(rows: np.ndarray) -> np.ndarray:
    """One int64 per integer matrix flattened to a row (n, 9) with entries in [-32, 31]."""
    return (np.asarray(rows, dtype=np.int64) + 32) @ _KEY_WEIGHTS


def pairwise_products(mats: np.ndarray) -> np.ndarray:
    """(n, n, 3, 3) all products mats[a] @ mats[b] of integer matrices, as one (3n x 3) @ (3 x 3n)
    float matrix product (exact for the small integers of lattice rotations), returned as int64."""
    n = len(mats)
    f = np.asarray(mats, dtype=float)
    flat = f.reshape(3 * n, 3) @ f.transpose(1, 0, 2).reshape(3, 3 * n)  # [(a, i), (b, k)]
    return np.rint(flat.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)).astype(np.int64)


def check_integer_group(lattice_rotations: np.ndarray) -> None:
    """Exact group check for distinct integer matrices: identity present and closed under products
    (a finite set of invertible matrices with both properties is a group, inverses included).
    A set that passed once is remembered (exact: keyed by its entries)."""
    w = np.asarray(lattice_rotations, dtype=np.int64).reshape(-1, 9)
    key = w.tobytes()
    if key not in _GROUPS_CHECKED:
        _check_integer_group(w)
        if len(_GROUPS_CHECKED) < 4096:  # a few hundred distinct sets occur in practice
            _GROUPS_CHECKED.add(key)


_GROUPS_CHECKED: set[bytes] = set()


def _check_integer_group(w: np.ndarray) -> None:
    if not (w == np.eye(3, dtype=np.int64).reshape(9)).all(axis=1).any():
        raise SymmetryError("point group has no identity")
    products = pairwise_products(w.reshape(-1, 3, 3)).reshape(-1, 9)
    if max(np.abs(w).max(), np.abs(products).max()) <= 31:  # exact membership through sorted integer keys
        keys, wanted = np.sort(matrix_keys(w)), matrix_keys(products)
        found = keys[np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)]
        closed = bool((np.diff(keys) != 0).all() and (found == wanted).all())
    else:
        members = {tuple(row) for row in w.tolist()}
        closed = len(members) == len(w) and all(tuple(row) in members for row in products.tolist())
    if not closed:
        raise SymmetryError("point-group operations are not closed under products")


@dataclass(frozen=True)
class CrystalSymmetry:
    """Symmetry of one crystal at one tolerance.

    Attributes:
        spacegroup_number: international number 1..230.
        international: Hermann-Mauguin space-group symbol (spglib).
        point_group: Hermann-Mauguin point-group symbol (spglib), e.g. "6mm".
        crystal_system: one of CRYSTAL_SYSTEMS.
        symprec: spglib distance tolerance used, in Angstrom.
        lattice_rotations: (n_r, 3, 3) int, the distinct W of the point group (fractional basis).
        rotations: (n_r, 3, 3) float64 Cartesian, exactly orthogonal, input frame (see module doc).
        raw_rotations: (n_r, 3, 3) float64 Cartesian, L W L^-1 with the input lattice.
        lattice_symmetrized: (3, 3) lattice vectors as ROWS (pymatgen convention), metric averaged.
        dataset: the backend's symmetry dataset this was derived from (operations, standard cell).
        backend: "spglib" or "moyopy", the library that analysed the crystal.
        crystal_order: order of the crystal's point group (of its space-group type). It exceeds
            ``order`` when the cell as given is a supercell whose lattice lacks some of the
            crystal's rotations (e.g. a 1x1x2 cell of a cubic crystal); see ``crystal_symmetry``.
    """

    spacegroup_number: int
    international: str
    point_group: str
    crystal_system: str
    symprec: float
    lattice_rotations: np.ndarray
    rotations: np.ndarray
    raw_rotations: np.ndarray
    lattice_symmetrized: np.ndarray
    dataset: object = field(default=None, repr=False, compare=False)
    backend: str = "spglib"
    crystal_order: int = 0

    @property
    def order(self) -> int:
        """Number of point-group operations n_r."""
        return len(self.rotations)

    @property
    def complete(self) -> bool:
        """Whether the cell's rotations are the crystal's whole point group."""
        return self.order >= self.crystal_order

    @property
    def is_centrosymmetric(self) -> bool:
        return bool(np.any(np.all(self.lattice_rotations == -np.eye(3, dtype=int), axis=(1, 2))))


def _spglib_cell(structure) -> tuple:
    return (
        np.asarray(structure.lattice.matrix, dtype=float),
        np.asarray(structure.frac_coords, dtype=float),
        np.asarray(structure.atomic_numbers, dtype=int),
    )


def _spglib_dataset(cell, symprec: float, angle_tolerance: float):
    """(rotations (n, 3, 3) int in the input basis, number, international, point group, dataset)."""
    import spglib

    try:
        dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
        detail = "no symmetry found" if dataset is None else ""
    except Exception as exc:  # spglib >= 2.5 may raise instead of returning None
        dataset, detail = None, str(exc)
    if dataset is None:
        raise SymmetryError(f"spglib could not analyse the structure at symprec={symprec}: {detail}")
    return (np.asarray(dataset.rotations, dtype=int), int(dataset.number), str(dataset.international),
            str(dataset.pointgroup), dataset)


@functools.lru_cache(maxsize=None)
def point_group_order_of_hall(hall_number: int) -> int:
    """Order of the point group of a space-group setting (spglib's Hall number 1-530): the number
    of distinct rotations of its conventional cell's operations."""
    import spglib

    rotations = np.asarray(spglib.get_symmetry_from_database(int(hall_number))["rotations"], dtype=int)
    return len(distinct_matrices(rotations))


def check_tolerance(symprec: float, angle_tolerance: float = -1.0) -> None:
    """Raise ValueError unless ``symprec`` is a distance in (0, 1] Angstrom and ``angle_tolerance``
    a finite number of degrees (negative: none). The symmetry libraries crash on other values."""
    if not (isinstance(symprec, (int, float, np.floating)) and np.isfinite(symprec) and 0 < symprec <= 1.0):
        raise ValueError(f"symprec must be a distance in (0, 1] Angstrom, got {symprec!r}")
    if not np.isfinite(angle_tolerance):
        raise ValueError(f"angle tolerance must be finite, got {angle_tolerance!r}")


def _moyopy_dataset(cell, symprec: float, angle_tolerance: float):
    """As _spglib_dataset, from moyopy (angle_tolerance in degrees, negative for none)."""
    import moyopy

    lattice, frac, numbers = cell
    try:
        dataset = moyopy.MoyoDataset(moyopy.Cell(lattice.tolist(), frac.tolist(), numbers.tolist()),
                                     symprec=symprec,
                                     angle_tolerance=None if angle_tolerance < 0 else np.radians(angle_tolerance))
    except Exception as exc:  # moyopy raises on a cell it cannot analyse
        raise SymmetryError(f"moyopy could not analyse the structure at symprec={symprec}: {exc}") from None
    number = int(dataset.number)
    return (np.asarray(dataset.operations.rotations, dtype=int), number, *_moyopy_symbols(number), dataset)


@functools.lru_cache(maxsize=None)
def _moyopy_symbols(number: int) -> tuple[str, str]:
    """(Hermann-Mauguin short symbol written as spglib writes it, point-group symbol)."""
    import moyopy

    kind = moyopy.SpaceGroupType(number)
    return kind.hm_short.replace(" ", ""), str(kind.geometric_crystal_class)


_ANALYSERS = {"spglib": _spglib_dataset, "moyopy": _moyopy_dataset}
SYMMETRY_BACKENDS = tuple(_ANALYSERS)
#: The backend prediction uses unless told otherwise (see the module doc).
PREDICTION_BACKEND = "moyopy"


def check_backend(backend: str) -> None:
    """Raise ValueError naming ``backend`` unless it is one of SYMMETRY_BACKENDS."""
    if backend not in _ANALYSERS:
        raise ValueError(f"unknown symmetry backend {backend!r}: expected one of {', '.join(SYMMETRY_BACKENDS)}")


def analyze_symmetry(structure, symprec: float = 1e-3, angle_tolerance: float = -1.0,
                     backend: str = "spglib") -> CrystalSymmetry:
    """Space group and Cartesian point group of a pymatgen Structure (default symprec 1e-3 A).

    ``backend``: "spglib" (the benchmark's definition) or "moyopy" (faster; see module doc).

    The rotations are those that map the cell as given onto itself; a supercell whose lattice lacks
    some of its crystal's rotations gets only the others (``complete`` is False): use
    ``crystal_symmetry`` for the crystal's whole point group. Raises ValueError for a tolerance
    outside (0, 1] Angstrom."""
    check_backend(backend)
    check_tolerance(symprec, angle_tolerance)
    ops_w, number, international, point_group, dataset = _ANALYSERS[backend](
        _spglib_cell(structure), symprec, angle_tolerance)
    unique = distinct_matrices(ops_w)
    lat_cols = np.asarray(structure.lattice.matrix, dtype=float).T
    lat_sym = symmetrized_lattice(lat_cols, unique)
    inv_lat, inv_sym = np.linalg.inv(np.stack([lat_cols, lat_sym]))
    raw = lat_cols @ unique @ inv_lat
    rot = lat_sym @ unique @ inv_sym
    check_integer_group(unique)  # R = L W L^-1 exactly, so this is the Cartesian group check too
    return CrystalSymmetry(
        spacegroup_number=number,
        international=international,
        point_group=point_group,
        crystal_system=crystal_system_from_number(number),
        symprec=float(symprec),
        lattice_rotations=unique,
        rotations=rot,
        raw_rotations=raw,
        lattice_symmetrized=lat_sym.T.copy(),
        dataset=dataset,
        backend=backend,
        crystal_order=point_group_order_of_hall(dataset.hall_number),
    )


def primitive_cell(structure, symprec: float = 1e-3):
    """A primitive cell of the crystal of ``structure``, in the same Cartesian frame (its lattice
    vectors are rational combinations of the input's; neither rotated nor idealized; spglib)."""
    import spglib
    from pymatgen.core import Lattice, Structure

    check_tolerance(symprec)
    try:
        lattice, frac, numbers = spglib.standardize_cell(_spglib_cell(structure), to_primitive=True,
                                                         no_idealize=True, symprec=symprec)
    except Exception as exc:  # spglib >= 2.5 may raise instead of returning None
        raise SymmetryError(f"spglib found no primitive cell at symprec={symprec}: {exc}") from None
    return Structure(Lattice(lattice), [int(z) for z in numbers], frac)


def crystal_symmetry(structure, symprec: float = 1e-3, angle_tolerance: float = -1.0, backend: str = "spglib",
                     symmetry: CrystalSymmetry | None = None):
    """(cell, symmetry) with the crystal's whole point group, in the input's Cartesian frame.

    For a cell whose own rotations are the crystal's whole point group (primitive and
    conventional cells: every benchmark crystal) that is ``structure`` itself and its
    ``analyze_symmetry``. A supercell whose lattice lacks some of the crystal's rotations (a
    1x1x2 cell of a cubic crystal has only the tetragonal ones) is replaced by its primitive cell
    in the same frame (``primitive_cell``), whose lattice has them all. The crystal is the same,
    so are its tensors. ``symmetry``: the structure's analysis at ``symprec`` if already done."""
    sym = symmetry if symmetry is not None else analyze_symmetry(structure, symprec, angle_tolerance, backend)
    if sym.complete:
        return structure, sym
    cell = primitive_cell(structure, sym.symprec)
    reduced = analyze_symmetry(cell, sym.symprec, angle_tolerance, sym.backend)
    if not reduced.complete:
        raise SymmetryError(f"the primitive cell of this {reduced.international} crystal still lacks rotations "
                            f"of its point group {reduced.point_group}")
    return cell, reduced
