"""``gmtnet symmetry FILE``: space group and the tensor patterns it forces."""

from __future__ import annotations

from pathlib import Path

import typer

from gmtnet.symmetry import PREDICTION_BACKEND
from gmtnet.tensors import TENSOR_TYPES, get_tensor_type


def symmetry(
    paths: list[Path] = typer.Argument(..., help="Structure files (CIF, POSCAR, anything pymatgen/ASE reads) or folders."),
    task: str = typer.Option("all", help="dielectric, piezoelectric, elastic or all."),
    symprec: float = typer.Option(1e-3, help="Symmetry tolerance in Angstrom, in (0, 1]."),
    backend: str = typer.Option(PREDICTION_BACKEND, help="moyopy (default, as gmtnet predict) or spglib "
                                "(the benchmark's definition; differs only for crystals at the tolerance)."),
) -> None:
    """Print each crystal's space group and the zeros/equalities it forces on the tensors.

    A bad file gets one error line and the others go on; the exit status is 1 when a single given
    file, or every file, fails."""
    from gmtnet.cli.batch import BatchErrors, expand_structure_paths
    from gmtnet.data.structures import read_structure, validate_structure
    from gmtnet.symmetry import SymmetryConstraints, check_backend, check_tolerance, crystal_symmetry

    types = list(TENSOR_TYPES.values()) if task == "all" else [get_tensor_type(task)]
    check_tolerance(symprec)
    check_backend(backend)
    files = expand_structure_paths(paths)
    errors = BatchErrors(len(files))
    for path in files:
        with errors.item(path):
            structure = read_structure(path)
            validate_structure(structure)
            cell, sym = crystal_symmetry(structure, symprec, backend=backend)
            typer.echo(f"{path}: {structure.composition.reduced_formula}, space group {sym.international} "
                       f"({sym.spacegroup_number}), point group {sym.point_group}, {sym.crystal_system}")
            if cell is not structure:
                typer.echo(f"  (the given cell is a supercell whose lattice lacks some of these rotations; "
                           f"analysed in its primitive cell of {len(cell)} atoms, same frame)")
            for ttype in types:
                d = SymmetryConstraints.from_rotations(sym.rotations, ttype).describe()
                groups = "; ".join(" = ".join(g) for g in d["equal_groups"]) or "none"
                typer.echo(f"  {ttype.name}: {d['n_independent']} independent; "
                           f"zero: {', '.join(d['zeros']) or 'none'}; equal: {groups}")
    errors.exit_if_failed()
