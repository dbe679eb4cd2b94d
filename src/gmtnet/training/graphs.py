"""Graph and symmetry preprocessing of a dataset, cached on disk and reused across runs.

A cache file holds, for one model's graph settings, every crystal's CrystalGraph as plain arrays
(``gmtnet.graph.storage``: an .npz read without unpickling, so a file planted in a shared cache
cannot run code). The point-group data derived from the graphs (projectors, orbit data) is
recomputed on load, a small part of building the graphs. The file's name is a hash of everything
the graphs depend on, so a change of settings or data never reuses stale graphs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from gmtnet.graph.storage import GraphFileError, load_graphs, save_graphs
from gmtnet.utils.io import data_dir
from gmtnet.utils.progress import progress_bar

CACHE_VERSION = 6  # 2: orbit maps; 3: site groups and edge classes; 4: arrays in .npz, no pickle; 5: smooth graphs;
# 6: space-group number


def _structure_digest(records) -> str:
    """Hash of every record's structure as stored (lattice, species, fractional coordinates, to
    the bit): the same ids with other structures (an edited data file, another frame) differ."""
    h = hashlib.sha1()
    for r in records:
        s = r.structure
        h.update(np.ascontiguousarray(s.lattice.matrix, dtype=np.float64).tobytes())
        h.update(np.asarray(s.atomic_numbers, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(s.frac_coords, dtype=np.float64).tobytes())
    return h.hexdigest()


def cache_key(model, records, source: str) -> str:
    """Hash of the model's graph settings, the records' ids and structures and the
    preprocessing version."""
    settings = getattr(model, "graph_settings", lambda: {})()
    blob = json.dumps({"v": CACHE_VERSION, "source": source, "settings": settings,
                       "ids": [r.material_id for r in records], "structures": _structure_digest(records)},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def prepare_graphs(model, records, source: str = "mp", cache_dir: str | Path | None = None,
                   progress: bool = True, desc: str = "graphs") -> list:
    """model.graph(record.structure) for every record, projectors included, cached on disk.

    Args:
        model: a gmtnet model (GMTNet or a baseline) with ``graph``, ``collate``, ``graph_settings``.
        records: TensorRecords. cache_dir: default ``$GMTNET_DATA/graphs``; False disables caching.
    Returns: a list of CrystalGraph, one per record, in order.
    """
    if cache_dir is False:
        path = None
    else:
        cache_dir = Path(cache_dir) if cache_dir is not None else data_dir() / "graphs"
        path = cache_dir / f"{model.config.task}-{desc}-{cache_key(model, records, source)}.npz"
        if path.is_file():
            try:
                graphs = load_graphs(path)
            except GraphFileError:
                graphs = None  # a damaged or foreign file is rebuilt and replaced
            if graphs is not None and len(graphs) == len(records):
                model.prepare_graphs(graphs)
                return graphs
    graphs = [model.graph(record.structure) for record in progress_bar(records, enabled=progress, desc=desc, leave=False)]
    model.prepare_graphs(graphs)  # the point-group projectors, cached on the graphs
    if path is not None:
        save_graphs(path, graphs)
    return graphs
