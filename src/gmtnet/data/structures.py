"""Reading structures from files, text, dicts and ASE Atoms, and checking they are usable.

Every failure raises ``StructureError`` with one line that names the problem.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from gmtnet.errors import StructureError

#: Closest allowed distance between two atoms (Angstrom). Real bonds are >= 0.7 A (H-H 0.74).
MIN_INTERATOMIC_DISTANCE = 0.5
#: Longest allowed lattice vector (Angstrom), and most volume per atom (Angstrom^3): beyond either
#: a cell is no condensed phase (solids hold 5-100 A^3 per atom) and only costs memory and time.
MAX_LATTICE_LENGTH = 1000.0
MAX_VOLUME_PER_ATOM = 1e5
#: Thickness (Angstrom) of an empty slab of the cell above which ``vacuum_gaps`` reports vacuum.
#: Bulk crystals leave at most a few Angstrom between atomic planes (the layers of graphite are
#: 3.35 A apart); slabs and molecules are built with 10-30 A of vacuum.
VACUUM_GAP = 7.0
#: Elements with CGCNN atom features (jarvis-tools ships Z = 1..100).
MAX_ATOMIC_NUMBER = 100


#: File names taken from a folder: these suffixes, and names starting with POSCAR or CONTCAR.
STRUCTURE_SUFFIXES = {".cif", ".vasp", ".poscar", ".json", ".xyz", ".extxyz", ".res", ".cssr", ".xsf", ".pdb"}


def _looks_like_structure_file(path: Path) -> bool:
    return path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.upper().startswith(("POSCAR", "CONTCAR"))


def structure_files(paths) -> list[Path]:
    """Files given directly (whatever they are: a missing or unreadable one fails when read, with
    its reason), plus the entries of folders whose names look like structure files, in name
    order, including links that lead nowhere (they fail when read, never silently skipped)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if _looks_like_structure_file(f) and not f.is_dir())
        else:
            out.append(p)
    return out


def check_readable_file(path: Path) -> None:
    """Raise StructureError naming why ``path`` cannot be read as a file (missing, a folder, a
    link loop, no permission)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise StructureError(f"{path}: {exc.strerror or 'cannot be read'}") from None
    if not stat.S_ISREG(st.st_mode):
        raise StructureError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise StructureError(f"{path}: {exc.strerror or 'cannot be read'}") from None


def _is_poscar_name(path: Path) -> bool:
    return path.suffix.lower() in (".vasp", ".poscar") or path.name.upper().startswith(("POSCAR", "CONTCAR"))


def read_structure(path: str | Path):
    """A pymatgen Structure from any file pymatgen or ASE can read (CIF, POSCAR, extxyz, ...).

    CIF files are read by pymatgen only (its reason is reported when it refuses one; ASE's reader
    would silently merge two elements on one site), after a check of the cell parameters. POSCAR
    files are checked to hold as many coordinate lines as their counts line says."""
    from pymatgen.core import Structure

    path = Path(path)
    check_readable_file(path)
    if path.suffix.lower() == ".cif":
        return _read_cif(path)
    if _is_poscar_name(path):
        check_poscar_counts(path.read_text(errors="replace"), str(path))
    errors = []
    try:
        return Structure.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - fall back to ASE's readers
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        import ase.io

        return from_ase(ase.io.read(str(path)))
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    raise StructureError(f"{path}: unreadable structure file ({errors[-1]})")


def _cif_number(text: str) -> float:
    """A CIF number, its standard uncertainty "(n)" dropped; nan when it is not a number."""
    try:
        return float(str(text).split("(")[0])
    except ValueError:
        return float("nan")


def _looks_like_poscar(text: str) -> bool:
    """Whether ``text`` parses as a POSCAR (e.g. a POSCAR saved under a .cif name)."""
    from pymatgen.io.vasp import Poscar

    try:
        Poscar.from_str(text)
        return True
    except Exception:  # noqa: BLE001 - anything pymatgen refuses is no POSCAR
        return False


#: Fractional distance below which two listed sites of a CIF are one position.
SAME_SITE = 1e-4


def check_cif_sites(block, name: str) -> None:
    """Raise StructureError for a CIF data block whose atom sites pymatgen would misreport: a
    coordinate that is not a number (NaN, a word), or one element listed twice at one position
    (pymatgen would sum the occupancies and blame disorder)."""
    axes = [f"_atom_site_fract_{a}" for a in "xyz"]
    if not all(a in block.data for a in axes):
        return
    columns = [block.data[a] for a in axes]
    columns = [c if isinstance(c, list) else [c] for c in columns]
    labels = block.data.get("_atom_site_label") or block.data.get("_atom_site_type_symbol") or []
    labels = labels if isinstance(labels, list) else [labels]
    elements = block.data.get("_atom_site_type_symbol") or labels
    elements = elements if isinstance(elements, list) else [elements]
    positions = []
    for i, values in enumerate(zip(*columns)):
        label = labels[i] if i < len(labels) else f"site {i + 1}"
        coords = [_cif_number(v) for v in values]
        for axis, raw, value in zip(axes, values, coords):
            if not np.isfinite(value):
                raise StructureError(f"{name}: atom site {label}: {axis} = {raw} is not a number")
        element = "".join(ch for ch in str(elements[i] if i < len(elements) else label) if ch.isalpha())
        for other_label, other_element, other in positions:
            delta = np.asarray(coords) - np.asarray(other)
            if element == other_element and np.abs(delta - np.round(delta)).max() < SAME_SITE:
                raise StructureError(f"{name}: atom sites {other_label} and {label} are the same {element} atom "
                                     f"at ({', '.join(map(str, values))}): a site listed twice")
        positions.append((label, element, coords))


def check_cif_text(text: str, name: str = "CIF") -> None:
    """Raise StructureError for CIF text pymatgen would refuse or misread with a misleading reason:
    text that is no CIF (no data block; a POSCAR is named as one), cell lengths that are not
    positive or angles outside (0, 180) degrees (pymatgen would build a mirrored cell from a
    negative length), and the atom sites of ``check_cif_sites``."""
    from pymatgen.io.cif import CifFile

    if "data_" not in text:
        hint = " (it reads as a POSCAR: name it POSCAR or *.vasp)" if _looks_like_poscar(text) else ""
        raise StructureError(f"{name}: not a CIF file: no data_ block{hint}")
    try:
        blocks = CifFile.from_str(text).data.values()
    except Exception:  # noqa: BLE001 - the structure parser reports unreadable text itself
        return
    for block in blocks:
        for axis in "abc":
            value = block.data.get(f"_cell_length_{axis}")
            if value is not None and not _cif_number(value) > 0:
                raise StructureError(f"{name}: cell length {axis} = {value} is not a positive length")
        for angle in ("alpha", "beta", "gamma"):
            value = block.data.get(f"_cell_angle_{angle}")
            if value is not None and not 0 < _cif_number(value) < 180:
                raise StructureError(f"{name}: cell angle {angle} = {value} is not within (0, 180) degrees")
        check_cif_sites(block, name)


def _parse_cif(text: str, name: str):
    """pymatgen's structure of CIF text; StructureError with pymatgen's reason when it has none."""
    import warnings

    from pymatgen.io.cif import CifParser

    check_cif_text(text, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return CifParser.from_str(text).parse_structures(primitive=False)[0]
        except Exception as exc:  # noqa: BLE001 - pymatgen's reasons come as warnings
            overfull = [str(w.message).splitlines()[-1] for w in caught if "exceeded tolerance" in str(w.message)]
            if overfull:
                raise StructureError(f"{name}: atoms of several elements share one site "
                                     f"({overfull[-1].rstrip('.')}): not an ordered crystal") from None
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StructureError(f"{name}: unreadable CIF ({reason})") from None


def _read_cif(path: Path):
    return _parse_cif(path.read_text(errors="replace"), str(path))


def check_poscar_counts(text: str, name: str = "POSCAR") -> None:
    """Raise StructureError when a POSCAR has more coordinate lines than its counts line lists
    (a reader would silently take the first ones). Text that is not a regular POSCAR is left to
    the parser."""
    lines = text.splitlines()

    def numbers(line: str, kind=float):
        try:
            return [kind(x) for x in line.split()]
        except ValueError:
            return None

    try:
        row = 6 if numbers(lines[5], int) is None else 5  # VASP 5 names the species on line 6
        counts = numbers(lines[row], int)
        if not counts:
            return
        row += 1
        if lines[row].strip()[:1] in ("s", "S"):  # selective dynamics
            row += 1
        first = row + 1  # after the Direct / Cartesian line
    except IndexError:
        return
    n = sum(counts)
    following = lines[first + n] if first + n < len(lines) else ""
    values = numbers(" ".join(following.split()[:3]))
    if following.strip() and values is not None and len(values) == 3:
        raise StructureError(f"{name}: the counts line lists {n} atoms, but line {first + n + 1} holds "
                             "another coordinate line")


def from_ase(atoms):
    """A pymatgen Structure from ASE Atoms; rejects cells that are not periodic in 3D."""
    from pymatgen.io.ase import AseAtomsAdaptor

    if not all(atoms.pbc):
        raise StructureError(
            f"not a 3D-periodic crystal (pbc={list(map(bool, atoms.pbc))}); a molecule or slab has no bulk tensor"
        )
    cell = np.asarray(atoms.cell, dtype=float)
    if not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < 1e-6 * max(1.0, np.abs(cell).max() ** 3):
        raise StructureError("the ASE Atoms' cell has no volume (zero or linearly dependent lattice vectors): "
                             "give it the crystal's cell")
    return AseAtomsAdaptor.get_structure(atoms)


def structure_from_text(text: str):
    """A Structure from CIF or POSCAR text (the same checks as ``read_structure``)."""
    from pymatgen.core import Structure

    fmt = "cif" if ("_cell_length_a" in text or text.lstrip().startswith("data_")) else "poscar"
    if fmt == "cif":
        return _parse_cif(text, "CIF text")
    check_poscar_counts(text, "POSCAR text")
    try:
        return Structure.from_str(text, fmt=fmt)
    except Exception as exc:  # noqa: BLE001
        raise StructureError(f"unreadable {fmt.upper()} text ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def is_structure_text(obj) -> bool:
    """Whether ``obj`` is the text of a structure (CIF or POSCAR: several lines), not a path."""
    return isinstance(obj, str) and "\n" in obj.strip()


def as_structure(obj, base_dir: str | Path | None = None):
    """Coerce a Structure, ASE Atoms, pymatgen dict, CIF/POSCAR text or file path to a Structure."""
    from pymatgen.core import Structure

    from ase import Atoms

    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, Atoms):
        return from_ase(obj)
    if isinstance(obj, dict):
        try:
            return Structure.from_dict(obj)
        except Exception as exc:  # noqa: BLE001
            raise StructureError(f"invalid pymatgen structure dict ({exc})") from None
    if isinstance(obj, Path) or (isinstance(obj, str) and not is_structure_text(obj)):
        path = Path(obj)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        return read_structure(path)
    if isinstance(obj, str):
        return structure_from_text(obj)
    raise StructureError(f"cannot make a structure from a {type(obj).__name__}")


def validate_structure(structure, min_distance: float = MIN_INTERATOMIC_DISTANCE) -> None:
    """Raise StructureError unless ``structure`` is an ordered, finite, 3D-periodic crystal of
    known elements with no two atoms closer than ``min_distance`` Angstrom."""
    if len(structure) == 0:
        raise StructureError("structure has no atoms")
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(lattice)) or not np.all(np.isfinite(structure.frac_coords)):
        raise StructureError("structure has NaN or infinite lattice or coordinates")
    pbc = getattr(structure.lattice, "pbc", (True, True, True))
    if not all(pbc):
        raise StructureError(f"not a 3D-periodic crystal (pbc={list(map(bool, pbc))})")
    if abs(np.linalg.det(lattice)) < 1e-6 * max(1.0, np.abs(lattice).max() ** 3):
        raise StructureError("lattice vectors are linearly dependent (zero cell volume)")
    lengths = np.linalg.norm(lattice, axis=1)
    if lengths.max() > MAX_LATTICE_LENGTH:
        raise StructureError(f"a lattice vector is {lengths.max():.4g} A long (limit {MAX_LATTICE_LENGTH:g} A): "
                             "not a crystal cell")
    volume_per_atom = abs(np.linalg.det(lattice)) / len(structure)
    if volume_per_atom > MAX_VOLUME_PER_ATOM:
        raise StructureError(f"{volume_per_atom:.4g} A^3 of cell per atom (limit {MAX_VOLUME_PER_ATOM:g}): "
                             "not a condensed phase")
    for i, site in enumerate(structure):
        species = site.species
        if len(species) > 1:
            raise StructureError(f"disordered site {i} ({species.formula}): only ordered crystals are supported")
        occupancy = sum(species.values())
        if abs(occupancy - 1.0) > 1e-6:
            raise StructureError(f"partial occupancy {occupancy:g} on site {i} ({species.formula})")
        z = getattr(site.specie, "Z", 0)
        if not 1 <= z <= MAX_ATOMIC_NUMBER:
            raise StructureError(f"unknown element {site.specie} on site {i}: atom features exist for Z = 1..{MAX_ATOMIC_NUMBER}")
    centers, points, distances = _close_pairs(lattice, structure.cart_coords, min_distance)
    if len(distances):
        k = int(np.argmin(distances))
        raise StructureError(
            f"overlapping atoms: sites {int(centers[k])} and {int(points[k])} are {distances[k]:.3f} A apart "
            f"(minimum {min_distance} A)"
        )


def _close_pairs(lattice: np.ndarray, positions: np.ndarray, cutoff: float):
    """(i, j, distance) of every pair of atoms (periodic images included, an atom and its own
    images too) closer than ``cutoff``; vesin's cell lists, whose cost grows with the atoms and
    not with the cell's volume."""
    from vesin import NeighborList

    i, j, d = NeighborList(cutoff=cutoff, full_list=False).compute(
        points=np.asarray(positions, dtype=np.float64), box=np.asarray(lattice, dtype=np.float64),
        periodic=True, quantities="ijd")
    return i, j, d


def vacuum_gaps(structure, min_gap: float = VACUUM_GAP) -> list[tuple[str, float]]:
    """Empty slabs of the cell: for each cell face (the planes spanned by b and c, c and a, a and
    b), the widest gap between consecutive atomic planes parallel to it, in Angstrom, when it
    exceeds ``min_gap``. A slab with vacuum along c gives [("c", gap)]; a molecule in a box gives
    all three. Returns (lattice vector name, gap) pairs."""
    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    volume = abs(np.linalg.det(lattice))
    frac = np.mod(np.asarray(structure.frac_coords, dtype=float), 1.0)
    gaps = []
    for axis, name in enumerate("abc"):
        spacing = volume / np.linalg.norm(np.cross(lattice[(axis + 1) % 3], lattice[(axis + 2) % 3]))
        f = np.sort(frac[:, axis])
        steps = np.diff(np.concatenate([f, [f[0] + 1.0]]))
        gap = float(steps.max() * spacing)
        if gap > min_gap:
            gaps.append((name, gap))
    return gaps


def vacuum_warning(structure, min_gap: float = VACUUM_GAP) -> str | None:
    """One line saying that ``structure`` holds vacuum (``vacuum_gaps``), or None for a bulk cell."""
    gaps = vacuum_gaps(structure, min_gap)
    if not gaps:
        return None
    kind = {1: "a slab or layer", 2: "a wire or chain", 3: "a molecule or cluster"}[len(gaps)]
    where = ", ".join(f"{gap:.1f} A along {name}" for name, gap in gaps)
    return (f"vacuum in the cell ({where}): {kind}, not a bulk crystal; "
            "its tensors are those of a fictitious bulk of such cells")
