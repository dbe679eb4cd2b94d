"""``gmtnet symmetry FILE``: space group and the tensor patterns it forces."""

from __future__ import annotations

from pathlib import Path

import typer

from gmtnet.tensors import TENSOR_TYPES, get_tensor_type


def symmetry(
    paths: list[Path] = typer.Argument(..., help="Structure files (CIF, POSCAR, anything pymatgen/ASE reads)."),
    task: str = typer.Option("all", help="dielectric, piezoelectric, elastic or all."),
    symprec: float = typer.Option(1e-3, help="Symmetry tolerance in Angstrom."),
    backend: str = typer.Option("spglib", help="spglib (the benchmark's definition) or moyopy (faster)."),
) -> None:
    """Print each crystal's space group and the zeros/equalities it forces on the tensors."""
    from gmtnet.data.structures import read_structure, validate_structure
    from gmtnet.symmetry import SymmetryConstraints, analyze_symmetry

    types = list(TENSOR_TYPES.values()) if task == "all" else [get_tensor_type(task)]
    for path in paths:
        structure = read_structure(path)
        validate_structure(structure)
        sym = analyze_symmetry(structure, symprec, backend=backend)
        typer.echo(f"{path}: {structure.composition.reduced_formula}, space group {sym.international} "
                   f"({sym.spacegroup_number}), point group {sym.point_group}, {sym.crystal_system}")
        for ttype in types:
            d = SymmetryConstraints.from_rotations(sym.rotations, ttype).describe()
            groups = "; ".join(" = ".join(g) for g in d["equal_groups"]) or "none"
            typer.echo(f"  {ttype.name}: {d['n_independent']} independent; "
                       f"zero: {', '.join(d['zeros']) or 'none'}; equal: {groups}")
