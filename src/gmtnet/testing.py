"""The shared test kit: ideal crystals of all seven crystal systems and the checks every model
and every fast kernel must pass.

``ideal_crystals()`` gives hand-built structures whose symmetry is exact (built from their space
groups), one or two per crystal system, with the point groups that make every kind of forced
tensor pattern appear (opposite-sign equalities in quartz, a piezoelectric zincblende, a
centrosymmetric rock salt, both monoclinic kinds, triclinic 1 and -1).

The checks take any model with ``predict(structures) -> (N, 3, ..., 3)`` and ``ttype`` (GMTNet,
the baselines, ensembles) and raise AssertionError naming what failed:

- ``assert_o3_equivariant``: a random proper and a random improper rotation of the crystal
  rotate the prediction (T -> Q.T, every index);
- ``assert_exactly_symmetric``: on every ideal crystal, forced zeros are 0.0 and forced
  equalities hold bit for bit (Neumann's principle);
- ``assert_invariant_to_cell_choice``: translation, atom permutation and a supercell leave the
  prediction unchanged;
- ``assert_agrees_with_reference``: a fast form gives the reference form's values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import random_orthogonal, rotate_tensor
from gmtnet.training.evaluate import rotate_structure


def _sg(symbol, lattice, species, coords):
    return Structure.from_spacegroup(symbol, lattice, species, coords)


def ideal_crystals() -> dict[str, Structure]:
    """Hand-built ideal crystals; keys name the crystal, values are exact-symmetry structures."""
    return {
        # cubic
        "rocksalt_NaCl": _sg("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "zincblende_GaAs": _sg("F-43m", Lattice.cubic(5.65), ["Ga", "As"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        # hexagonal
        "wurtzite_ZnO": _sg("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
        # tetragonal
        "rutile_TiO2": _sg("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                           [[0, 0, 0], [0.305, 0.305, 0]]),
        # trigonal
        "alpha_quartz": _sg("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                            [[0.4697, 0, 2 / 3], [0.4135, 0.2669, 0.1191 + 2 / 3]]),
        # orthorhombic
        "orthorhombic_mm2": Structure(Lattice.orthorhombic(3.1, 4.2, 5.3), ["Ga", "N"], [[0, 0, 0], [0, 0, 0.37]]),
        "orthorhombic_mmm": Structure(Lattice.orthorhombic(3.1, 4.2, 5.3), ["Na", "Cl"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5]]),
        # monoclinic (unique axis b, along y in pymatgen's lattice orientation)
        "monoclinic_2m": _sg("P2_1/c", Lattice.monoclinic(5.1, 6.2, 7.3, 101.0), ["Na", "Cl"],
                             [[0.11, 0.23, 0.31], [0.37, 0.13, 0.27]]),
        "monoclinic_2": _sg("P2_1", Lattice.monoclinic(5.1, 6.2, 7.3, 101.0), ["Na", "Cl"],
                            [[0.11, 0.23, 0.31], [0.37, 0.13, 0.27]]),
        # triclinic
        "triclinic_1": Structure(Lattice.from_parameters(4.1, 5.2, 6.3, 81, 97, 103), ["Si", "O", "O"],
                                 [[0.0, 0.0, 0.0], [0.21, 0.33, 0.12], [0.61, 0.72, 0.45]]),
        "triclinic_-1": _sg("P-1", Lattice.from_parameters(4.1, 5.2, 6.3, 81, 97, 103), ["Si", "O"],
                            [[0.1, 0.2, 0.3], [0.31, 0.43, 0.22]]),
    }


def pinned_crystals(examples: str | Path) -> dict:
    """{name: structure or file path}: the CIF files in the folder ``examples`` and the ideal
    crystals, whose shipped-model predictions tests/fixtures/shipped_predictions.json pins."""
    inputs = {f.name: str(f) for f in sorted(Path(examples).glob("*.cif"))}
    inputs.update(ideal_crystals())
    return inputs


def relative_error(a, b) -> float:
    """||a - b|| / ||b|| (Frobenius; b = 0 counts as 1e-30)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def assert_o3_equivariant(model, structure: Structure, tol: float, seed: int = 0) -> None:
    """model(Q crystal) = Q . model(crystal) to relative ``tol`` for a random proper and a random
    improper Q (seeded), and the prediction is not zero (so the check can fail)."""
    rng = np.random.default_rng(seed)
    base = model.predict([structure])[0]
    assert np.linalg.norm(base) > 0, "the prediction is zero: equivariance would hold trivially"
    for improper in (False, True):
        q = random_orthogonal(rng, improper=improper)
        moved = model.predict([rotate_structure(structure, q)])[0]
        err = relative_error(moved, rotate_tensor(base, q, model.ttype))
        assert err < tol, f"{'improper' if improper else 'proper'} rotation: relative error {err:.2e} >= {tol:.0e}"


def assert_exactly_symmetric(model, crystals: dict[str, Structure] | None = None) -> None:
    """On each crystal (default: every ideal crystal) the components its point group forces to
    zero are exactly 0.0, forced equalities hold exactly (opposite signs included), and a crystal
    with allowed components gets a non-zero tensor."""
    crystals = ideal_crystals() if crystals is None else crystals
    names = list(crystals)
    for name, t in zip(names, model.predict([crystals[n] for n in names])):
        c = SymmetryConstraints.from_structure(crystals[name], model.ttype)
        assert np.all(t[c.zero_mask()] == 0.0), f"{name}: a forced zero is not exactly 0.0"
        for a, b, sign in c.equalities:
            assert t[b] == sign * t[a], f"{name}: forced equality {a} ~ {b} broken"
        if c.n_independent:
            assert np.abs(t).max() > 0, f"{name}: zero tensor although {c.n_independent} components are allowed"


def assert_invariant_to_cell_choice(model, structure: Structure, tol: float, seed: int = 0, **predict_options) -> None:
    """A translated copy, an atom permutation and a 2x1x1 supercell of ``structure`` get its
    prediction to relative ``tol``."""
    rng = np.random.default_rng(seed)
    shifted = Structure(structure.lattice, structure.species, structure.cart_coords + rng.normal(size=3),
                        coords_are_cartesian=True)
    perm = rng.permutation(len(structure))
    permuted = Structure(structure.lattice, [structure.species[p] for p in perm], structure.frac_coords[perm])
    base, *others = model.predict([structure, shifted, permuted, structure * (2, 1, 1)], **predict_options)
    for name, other in zip(("translation", "permutation", "supercell"), others):
        err = relative_error(other, base)
        assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e}"


def assert_agrees_with_reference(fast, reference, inputs, rtol: float, atol: float = 0.0) -> None:
    """A fast form and its reference form give the same values: ``fast(x)`` against
    ``reference(x)`` for every x in ``inputs`` (arrays or tensors), elementwise to
    ``atol + rtol |reference|``, and the reference is not all zero."""
    for i, x in enumerate(inputs):
        want = np.asarray(_as_numpy(reference(x)), dtype=np.float64)
        got = np.asarray(_as_numpy(fast(x)), dtype=np.float64)
        assert got.shape == want.shape, f"input {i}: shape {got.shape} != {want.shape}"
        assert np.abs(want).max() > 0, f"input {i}: the reference is zero"
        bad = np.abs(got - want) > atol + rtol * np.abs(want)
        assert not bad.any(), f"input {i}: {bad.sum()} values differ (largest {np.abs(got - want).max():.2e})"


def _as_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


__all__ = ["ideal_crystals", "pinned_crystals", "relative_error", "assert_o3_equivariant",
           "assert_exactly_symmetric", "assert_invariant_to_cell_choice", "assert_agrees_with_reference"]
