"""Structure refinement ("struct correction"): make a slightly distorted crystal exactly symmetric.

Keeps the input's Cartesian frame (orientation) and atom order, unlike spglib's standardisation:

- lattice: the group-averaged metric, oriented like the input (``symmetrized_lattice``), so that
  every point-group operation is an exact orthogonal matrix;
- positions: the backend's idealized standard cell (spglib's or moyopy's) is exactly symmetric;
  with its transformation (P, p), x_std = P x + p (mod 1), each input atom is moved to the
  idealized position of the standard-cell atom it sits on, mapped back as x = P^-1 (x_std - p). An affine change of cell
  keeps the symmetry exact, and the lattice step only changes the metric, not fractional positions.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from gmtnet.symmetry.point_group import CrystalSymmetry, SymmetryError, analyze_symmetry


def _wrap(d: np.ndarray) -> np.ndarray:
    return d - np.round(d)


def standard_cell(structure, symmetry: CrystalSymmetry) -> tuple[np.ndarray, ...]:
    """(P, p, positions, types, lattice): the idealized standard cell of the backend's dataset
    and its relation to the input cell, x_std = P x + p (fractional). spglib gives P and p
    (transformation_matrix, origin_shift); moyopy gives x = L x_std + s (std_linear,
    std_origin_shift), so P = L^-1 and p = -L^-1 s."""
    dataset, backend = symmetry.dataset, symmetry.backend
    if dataset is None:
        raise SymmetryError("the CrystalSymmetry carries no dataset of its backend (analyse the structure "
                            "with gmtnet.symmetry.analyze_symmetry)")
    if backend == "moyopy":
        p_mat = np.linalg.inv(np.asarray(dataset.std_linear, dtype=float))
        cell = dataset.std_cell
        return (p_mat, -p_mat @ np.asarray(dataset.std_origin_shift, dtype=float),
                np.asarray(cell.positions, dtype=float), np.asarray(cell.numbers), np.asarray(cell.basis, dtype=float))
    return (np.asarray(dataset.transformation_matrix, dtype=float), np.asarray(dataset.origin_shift, dtype=float),
            np.asarray(dataset.std_positions, dtype=float), np.asarray(dataset.std_types),
            np.asarray(dataset.std_lattice, dtype=float))


def idealized_fractional_positions(structure, symmetry: CrystalSymmetry) -> np.ndarray:
    """(n_atoms, 3) fractional coordinates, in the input cell, of the symmetrized atom positions,
    from the idealized standard cell of the dataset ``symmetry`` was derived from (spglib's or
    moyopy's)."""
    p_mat, shift, std_pos, std_types, std_lattice = standard_cell(structure, symmetry)
    frac = np.asarray(structure.frac_coords, dtype=float)
    numbers = np.asarray(structure.atomic_numbers)
    in_std = frac @ p_mat.T + shift  # (n, 3)
    diff = _wrap(std_pos[None, :, :] - in_std[:, None, :])  # (n, n_std, 3)
    # compare in Cartesian length (std lattice) so skewed cells are handled
    dist = np.linalg.norm(diff @ std_lattice, axis=-1)
    dist[numbers[:, None] != std_types[None, :]] = np.inf
    match = dist.argmin(axis=1)
    if np.any(~np.isfinite(dist[np.arange(len(frac)), match])):
        raise SymmetryError("an atom has no counterpart of its species in the standard cell")
    ideal_std = in_std + diff[np.arange(len(frac)), match]
    return (ideal_std - shift) @ np.linalg.inv(p_mat).T


def refine_structure(structure, symmetry: CrystalSymmetry):
    """A copy of ``structure`` symmetrized to its space group as ``symmetry`` (its analysis,
    ``analyze_symmetry`` or ``crystal_symmetry``) found it: same frame, same atom order.

    Returns a new pymatgen Structure; ``structure`` is not modified.
    """
    if not isinstance(symmetry, CrystalSymmetry):
        raise TypeError("refine_structure needs the structure's CrystalSymmetry (gmtnet.symmetry.analyze_symmetry)")
    frac = idealized_fractional_positions(structure, symmetry)
    return Structure(
        Lattice(symmetry.lattice_symmetrized),
        structure.species,
        frac,
        coords_are_cartesian=False,
        site_properties=structure.site_properties or None,
    )


def symmetrize_structure(structure, symprec: float = 1e-3, backend: str = "spglib"):
    """``refine_structure`` of ``structure`` with its own analysis at ``symprec`` Angstrom: the
    crystal made exactly symmetric within that tolerance, in the same frame and atom order."""
    return refine_structure(structure, analyze_symmetry(structure, symprec, backend=backend))
