"""The point-group data a crystal's graph carries for the models, derived from its rotations.

Every field is a pure function of the crystal's Cartesian point group (``CrystalGraph.rotations``)
and, for the orbit data, of the graph's orbit map; ``gmtnet.model.batch`` fills the fields a model
needs, for many crystals in one call, and collates them into batches. Nothing here is written to
disk (graph files store the rotations and orbit maps; this is recomputed from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmtnet.symmetry.constraints import SymmetryConstraints


@dataclass
class PointGroupData:
    """Point-group data of one crystal, filled on first use.

    Attributes:
        constraints: {tensor type name: SymmetryConstraints} (forced pattern and Reynolds
            projector of that type).
        rotation_wigner: [D^l (n_r, 2l+1, 2l+1), l = 0..L] of every rotation, or None.
        rotation_sign: (n_r,) det R of every rotation (+1 or -1), or None.
        averaged_wigner: {str(irreps): {(l, p): (2l+1, 2l+1)}} group averages of D^l (times
            det R^(p == -1)) for the features of those irreps.
        orbits: {lmax: orbit arrays of the crystal alone} (``gmtnet.model.batch.orbit_arrays``:
            representatives, each atom's rotation's D^l up to lmax, kept edges, site projectors).
    """

    constraints: dict[str, SymmetryConstraints] = field(default_factory=dict)
    rotation_wigner: list[np.ndarray] | None = None
    rotation_sign: np.ndarray | None = None
    averaged_wigner: dict[str, dict] = field(default_factory=dict)
    orbits: dict[int, dict] = field(default_factory=dict)

    @property
    def wigner_lmax(self) -> int:
        """The highest l of ``rotation_wigner`` (-1 when not computed)."""
        return -1 if self.rotation_wigner is None else len(self.rotation_wigner) - 1

    def clear(self) -> None:
        """Forget everything (recomputed when next needed)."""
        self.constraints, self.averaged_wigner, self.orbits = {}, {}, {}
        self.rotation_wigner = self.rotation_sign = None
