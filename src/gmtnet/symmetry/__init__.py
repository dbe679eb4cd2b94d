"""Crystal symmetry: point groups, Reynolds projectors, forced tensor patterns, structure refinement,
and the point-group data a crystal's graph carries for the models."""

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
    check_tolerance,
    crystal_symmetry,
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
from gmtnet.symmetry.point_group_data import PointGroupData
from gmtnet.symmetry.refine import refine_structure

__all__ = [
    "CRYSTAL_SYSTEMS",
    "PREDICTION_BACKEND",
    "SYMMETRY_BACKENDS",
    "CrystalSymmetry",
    "PointGroupData",
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
]
