"""Crystal symmetry, the one home of it in gmtnet: space and point groups (spglib or moyopy, the only
modules that call them), Reynolds projectors and forced tensor patterns, structure refinement,
orbits of symmetry-equivalent atoms, Wigner matrices of the point group, and the immutable
point-group record of each crystal that the graph, the models, training and prediction receive.

Modules: ``point_group`` (analysis, CrystalSymmetry), ``refine`` (symmetrized structures),
``constraints`` (projectors, patterns, snapping), ``orbits`` (orbit maps of a graph),
``wigner`` (D^l of the rotations and their averages), ``point_group_data`` (the record)."""

import os

# spglib's C library prints "spglib: ... failed." lines to stderr while it searches a cell's
# symmetry; they are internal steps, not errors (its result or SymmetryError says what happened).
# Quiet unless the user asked for them.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

from gmtnet.symmetry.point_group import (
    CRYSTAL_SYSTEMS,
    PREDICTION_BACKEND,
    SYMMETRY_BACKENDS,
    CrystalSymmetry,
    SymmetryError,
    analyze_symmetry,
    check_group,
    check_backend,
    check_tolerance,
    crystal_symmetry,
    matrix_keys,
    crystal_system_from_number,
    primitive_cell,
)
from gmtnet.symmetry.constraints import (
    SymmetryConstraints,
    component_label,
    project_each,
    reynolds_projector,
    reynolds_projectors,
)
from gmtnet.symmetry.orbits import OrbitMap, atom_orbits
from gmtnet.symmetry.point_group_data import (
    OrbitArrays,
    PointGroupData,
    PointGroupNeeds,
    irreps_key,
    point_group_data,
)
from gmtnet.symmetry.wigner import averaged_wigner, averaged_wigner_groups, wigner_matrices
from gmtnet.symmetry.refine import refine_structure, symmetrize_structure

__all__ = [
    "CRYSTAL_SYSTEMS",
    "PREDICTION_BACKEND",
    "SYMMETRY_BACKENDS",
    "CrystalSymmetry",
    "OrbitArrays",
    "OrbitMap",
    "PointGroupData",
    "PointGroupNeeds",
    "atom_orbits",
    "averaged_wigner",
    "averaged_wigner_groups",
    "irreps_key",
    "matrix_keys",
    "point_group_data",
    "wigner_matrices",
    "check_backend",
    "SymmetryError",
    "analyze_symmetry",
    "check_group",
    "check_tolerance",
    "crystal_symmetry",
    "primitive_cell",
    "crystal_system_from_number",
    "SymmetryConstraints",
    "reynolds_projector",
    "reynolds_projectors",
    "project_each",
    "component_label",
    "refine_structure",
    "symmetrize_structure",
]
