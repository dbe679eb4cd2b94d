"""Rendering predictions as a readable table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from gmtnet.tensors import get_tensor_type


def _matrix(m: np.ndarray, indent: str = "    ") -> str:
    return "\n".join(indent + " ".join(f"{x:9.3f}" for x in row) for row in np.atleast_2d(m))


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _fmt_short(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def as_table(results) -> str:
    """Human-readable report: per crystal, symmetry, each tensor in Voigt form, its independent
    components and the derived properties."""
    blocks = []
    for r in results:
        if not r.ok:
            blocks.append(f"{r.source}: error: {r.error}")
            continue
        lines = [f"{r.source}: {r.formula}, {r.n_atoms} atoms, space group {r.spacegroup_symbol} "
                 f"({r.spacegroup_number}), point group {r.point_group}, {r.crystal_system} "
                 f"(symprec {r.symprec:g} A{', symmetrized' if r.refined else ', as given'})"]
        lines += [f"  WARNING: {w}" for w in r.warnings]
        for task in r.tensors:
            tt = get_tensor_type(task)
            unit = f" ({tt.unit})" if tt.unit else ""
            form = "Cartesian" if tt.order == 2 else "Voigt"
            free = r.independent[task]
            lines.append(f"  {task}{unit}, {form} form, independent ({len(free)}): {', '.join(free) or 'none'}")
            lines.append(_matrix(r.display_matrix(task)))
            if task in r.error_bounds:
                lines.append(f"    error bound {r.error_bounds[task]:.3g}{' ' + tt.unit if tt.unit else ''} "
                             f"(Frobenius norm of the error, for {100 * r.error_bound_coverage[task]:.0f}% "
                             "of crystals like the validation set)")
            props = {k: v for k, v in r.properties.get(task, {}).items() if not isinstance(v, list)}
            for k in ("eigenvalues", "refractive_indices"):  # lists of an order-2 tensor's properties
                if k in r.properties.get(task, {}):
                    props[k] = ", ".join(_fmt_short(x) for x in r.properties[task][k])
            if props:
                lines.append("    " + "; ".join(f"{k} {_fmt(v)}" for k, v in props.items()))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def as_json(results) -> str:
    return json.dumps([r.to_dict() for r in results], indent=1) + "\n"


def csv_row(r) -> dict:
    """One CSV row: symmetry, Voigt components (e.g. dielectric_eps11, dielectric_ionic_eps33,
    elastic_C11), the error bound of each tensor (e.g. elastic_error_bound; empty for a model
    without one), scalar derived properties (e.g. dielectric_electronic_refractive_index), and
    the error and warnings columns (warnings joined by "; ")."""
    row = {"source": r.source, "error": r.error or "", "warnings": "; ".join(r.warnings), "formula": r.formula,
           "spacegroup": r.spacegroup_number or "", "crystal_system": r.crystal_system,
           "symprec": r.symprec if r.ok else "", "refined": r.refined if r.ok else ""}
    for task in r.tensors:
        tt = get_tensor_type(task)
        for (i, j), x in np.ndenumerate(r.display_matrix(task)):
            row[f"{task}_{tt.symbol}{i + 1}{j + 1}"] = f"{x:.6g}"
        row[f"{task}_error_bound"] = f"{r.error_bounds[task]:.6g}" if task in r.error_bounds else ""
        for k, x in r.properties.get(task, {}).items():
            if not isinstance(x, list):
                row[f"{task}_{k}"] = x
    return row


def as_csv(results) -> str:
    """One row per structure (see csv_row)."""
    rows = [csv_row(r) for r in results]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_jsonl(results) -> str:
    """One JSON object per line (the json format's entries)."""
    return "".join(json.dumps(r.to_dict()) + "\n" for r in results)


FORMATS = {"table": as_table, "json": as_json, "csv": as_csv, "jsonl": as_jsonl}
