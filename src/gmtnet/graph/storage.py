"""Crystal graphs on disk as plain arrays (numpy .npz, read with ``allow_pickle=False``).

A file holds many CrystalGraphs: for every array field, the graphs' arrays flattened and
concatenated, and a table of each graph's number of axes (-1 where the field is None) and shape. Nothing in such a file can
run code when it is read, so a shared or tampered cache is at worst rejected. Per-graph derived
data (``CrystalGraph.point_group``, a PointGroupData: projectors, orbit data) is not stored: it is
recomputed from the arrays (``TensorModel.prepare_graphs``).
"""

from __future__ import annotations

import io
from dataclasses import fields
from pathlib import Path

import numpy as np

from gmtnet.graph.neighbors import CrystalGraph
from gmtnet.utils.io import atomic_write_bytes

FORMAT = "gmtnet-graphs-3"  # 2: edge_radius; 3: spacegroup_number
ARRAY_FIELDS = tuple(f.name for f in fields(CrystalGraph) if f.name != "point_group")
DTYPES = {"atomic_numbers": np.int64, "edge_src": np.int64, "edge_dst": np.int64, "edge_vec": np.float64,
          "edge_shift": np.int64, "lattice": np.float64, "rotations": np.float64, "spacegroup_number": np.int64,
          "orbit_rep": np.int64,
          "orbit_rotation": np.int64, "site_rotations": np.bool_, "edge_multiplicity": np.int64,
          "edge_radius": np.float64}
SCALAR_FIELDS = ("spacegroup_number",)  # stored as 0-d arrays, read back as int
MAX_NDIM = 3


class GraphFileError(ValueError):
    """A graph file that is not one this module wrote (damaged, foreign or of another version)."""


def graphs_to_bytes(graphs: list[CrystalGraph]) -> bytes:
    """The .npz bytes of ``graphs`` (see the module doc for the layout)."""
    arrays = {"format": np.array(FORMAT), "count": np.array(len(graphs), dtype=np.int64)}
    for name in ARRAY_FIELDS:
        shapes = np.zeros((len(graphs), 1 + MAX_NDIM), dtype=np.int64)
        shapes[:, 0] = -1
        parts = []
        for i, g in enumerate(graphs):
            value = getattr(g, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=DTYPES[name])
            if value.ndim > MAX_NDIM:
                raise ValueError(f"graph field {name} has {value.ndim} axes; at most {MAX_NDIM} are stored")
            shapes[i, 0] = value.ndim
            shapes[i, 1:1 + value.ndim] = value.shape
            parts.append(value.reshape(-1))
        arrays[f"{name}.shapes"] = shapes
        arrays[f"{name}.data"] = np.concatenate(parts) if parts else np.zeros(0, dtype=DTYPES[name])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_graphs(path: str | Path, graphs: list[CrystalGraph]) -> Path:
    """Write ``graphs`` to ``path`` atomically."""
    return atomic_write_bytes(path, graphs_to_bytes(graphs))


def _shape(row: np.ndarray) -> tuple[int, ...] | None:
    """The shape stored in one row (number of axes, then the axes); None for an absent field."""
    ndim = int(row[0])
    if ndim < 0:
        return None
    if ndim > MAX_NDIM or (row[1:1 + ndim] < 0).any():
        raise GraphFileError("a graph field has an impossible shape")
    return tuple(int(d) for d in row[1:1 + ndim])


def load_graphs(path: str | Path) -> list[CrystalGraph]:
    """The graphs of a file written by ``save_graphs``; GraphFileError for anything else."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["format"]) != FORMAT:
                raise GraphFileError(f"{path}: not a gmtnet graph file of format {FORMAT}")
            count = int(npz["count"])
            columns = {name: (npz[f"{name}.shapes"], npz[f"{name}.data"]) for name in ARRAY_FIELDS}
    except GraphFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or not an archive at all
        raise GraphFileError(f"{path}: not a readable graph file ({type(exc).__name__})") from None
    values: dict[str, list] = {}
    for name, (shapes, data) in columns.items():
        if shapes.shape != (count, 1 + MAX_NDIM) or data.dtype != DTYPES[name]:
            raise GraphFileError(f"{path}: field {name} has the wrong layout")
        out, offset = [], 0
        for row in shapes:
            try:
                shape = _shape(row)
            except GraphFileError:
                raise GraphFileError(f"{path}: field {name} has an impossible shape") from None
            if shape is None:
                out.append(None)
                continue
            size = int(np.prod(shape))
            if offset + size > len(data):
                raise GraphFileError(f"{path}: field {name} is shorter than its shapes say")
            out.append(data[offset:offset + size].reshape(shape))
            offset += size
        if offset != len(data):
            raise GraphFileError(f"{path}: field {name} is longer than its shapes say")
        values[name] = out
    for name in SCALAR_FIELDS:
        values[name] = [None if v is None else _scalar(v, name, path) for v in values[name]]
    return [CrystalGraph(**{name: values[name][i] for name in ARRAY_FIELDS}) for i in range(count)]


def _scalar(value: np.ndarray, name: str, path) -> int:
    if value.ndim != 0:
        raise GraphFileError(f"{path}: field {name} is not a number")
    return int(value)


__all__ = ["GraphFileError", "graphs_to_bytes", "load_graphs", "save_graphs"]
