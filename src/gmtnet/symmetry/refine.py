"""Structure refinement ("struct correction"): make a slightly distorted crystal exactly symmetric.

Keeps the input's Cartesian frame (orientation) and atom order, unlike spglib's standardisation:

- lattice: the group-averaged metric, oriented like the input (see ``symmetrized_lattice``);
- positions: each atom is moved to the average of its images under the space group,
  x_i <- x_i + mean_g wrap(g^-1(x_{pi_g(i)}) - x_i), where pi_g(i) is the atom that g maps i to.
  The average over a group of a group action is invariant, so the result is symmetric.
"""

from __future__ import annotations

import numpy as np

from gmtnet.symmetry.point_group import CrystalSymmetry, SymmetryError, analyze_symmetry


def _wrap(d: np.ndarray) -> np.ndarray:
    return d - np.round(d)


def refine_structure(structure, symprec: float = 1e-3, symmetry: CrystalSymmetry | None = None):
    """A copy of ``structure`` symmetrized to its space group at ``symprec`` (same frame, order).

    Returns a new pymatgen Structure; ``structure`` is not modified.
    """
    from pymatgen.core import Lattice, Structure

    sym = symmetry or analyze_symmetry(structure, symprec)
    frac = np.asarray(structure.frac_coords, dtype=float)
    numbers = np.asarray(structure.atomic_numbers)
    displacement = np.zeros_like(frac)
    for w, t in zip(sym.operations_rotations, sym.operations_translations):
        images = frac @ w.T + t  # g(x_i)
        diff = _wrap(images[:, None, :] - frac[None, :, :])  # (i, j, 3)
        # Euclidean-ish distance in fractional space is enough to find the partner at symprec.
        dist = np.abs(diff).max(axis=-1)
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        partner = dist.argmin(axis=1)  # pi_g(i)
        if np.any(np.isinf(dist[np.arange(len(frac)), partner])):
            raise SymmetryError("space-group operation maps an atom onto no atom of the same species")
        # g^-1(x_pi(i)) = W^-1 (x_pi(i) - t), brought next to x_i
        back = (frac[partner] - t) @ np.linalg.inv(w).T
        displacement += _wrap(back - frac)
    new_frac = frac + displacement / len(sym.operations_rotations)
    return Structure(
        Lattice(sym.lattice_symmetrized),
        structure.species,
        new_frac,
        coords_are_cartesian=False,
        site_properties=structure.site_properties or None,
    )
