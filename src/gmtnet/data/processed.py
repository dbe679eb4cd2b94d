"""The on-disk cache of a curated dataset: gzip-compressed JSON under ``$GMTNET_DATA``.

One file per (source, task, curation settings), written atomically: the records (structure as a
pymatgen dict, symmetrized label, split, space group) and the curation report. A file whose
version or settings differ from what the caller expects is ignored, never half-read.
"""

from __future__ import annotations

from pathlib import Path

from gmtnet.data.records import CurationReport, TensorDataset, TensorRecord
from gmtnet.utils.io import read_json_gz, write_json_gz


def write_processed(path: str | Path, dataset: TensorDataset, version: int, **settings) -> Path:
    """Cache ``dataset`` at ``path`` with its report, ``version`` and the curation ``settings``."""
    return write_json_gz(path, {
        "version": version,
        "task": dataset.task,
        **settings,
        "report": dataset.report.to_dict(),
        "records": [r.to_dict() for r in dataset],
    })


def read_processed(path: str | Path, version: int, source: str, **settings) -> TensorDataset | None:
    """The cached dataset at ``path``, or None when there is none, or it was written by another
    ``version`` or with other ``settings`` (each key must hold the same value)."""
    path = Path(path)
    if not path.is_file():
        return None
    blob = read_json_gz(path)
    if blob.get("version") != version or any(blob.get(k) != v for k, v in settings.items()):
        return None
    return TensorDataset([TensorRecord.from_dict(d) for d in blob["records"]], blob["task"], source,
                         CurationReport.from_dict(blob["report"]))


__all__ = ["read_processed", "write_processed"]
