"""Appending prediction results to a CSV or JSON Lines file as they come, and resuming it.

The file only grows: every chunk of rows is written, flushed and fsynced before the next one is
predicted, so an interrupted run loses at most the chunk in flight. On resume, a last line cut
short by the interruption is removed, and the sources already in the file are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from gmtnet.errors import GmtnetError
from gmtnet.prediction.formatting import as_jsonl, csv_row

STREAM_FORMATS = ("csv", "jsonl")


def _reference_columns(tasks) -> list[str]:
    """CSV columns for ``tasks``: those of a prediction with every field and property present."""
    from gmtnet.prediction.predictor import CrystalPrediction
    from gmtnet.prediction.properties import derived_properties
    from gmtnet.tensors import ELASTIC, PIEZOELECTRIC, from_voigt

    reference = {"dielectric": np.eye(3),
                 "piezoelectric": from_voigt(np.arange(1.0, 19.0).reshape(3, 6), PIEZOELECTRIC),
                 "elastic": from_voigt(np.eye(6) + np.diag([1.0] * 3 + [0.0] * 3), ELASTIC)}
    tensors = {t: reference[t] for t in tasks}
    pred = CrystalPrediction(source="", formula="x", spacegroup_number=1, crystal_system="triclinic",
                             tensors=tensors, properties=derived_properties(tensors))
    return list(csv_row(pred))


def _cut_partial_line(path: Path) -> None:
    """Drop a last line without its newline (a write cut short)."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(max(0, size - 65536))
        tail = handle.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        handle.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)


class ResultWriter:
    """Appends CrystalPredictions to ``path`` as CSV or JSON Lines (``path`` None: standard
    output). ``done`` holds the sources already written (filled on resume)."""

    def __init__(self, path: Path | None, fmt: str, tasks, resume: bool = False):
        if fmt not in STREAM_FORMATS:
            raise GmtnetError(f"streaming output needs --format csv or jsonl, not {fmt!r}")
        self.path, self.fmt, self.done = (Path(path) if path else None), fmt, set()
        self.columns = _reference_columns(tasks) if fmt == "csv" else None
        if self.path is None:
            if resume:
                raise GmtnetError("--resume needs --out (the file to continue)")
            self.handle = None
            return
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise GmtnetError(f"{self.path} exists: add --resume to continue it, or choose another --out")
        if exists:
            _cut_partial_line(self.path)
            self.done = self._read_sources()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a", newline="", encoding="utf-8")
        if fmt == "csv" and (not exists or self.path.stat().st_size == 0):
            self._write_text(self._csv_text([dict(zip(self.columns, self.columns))]))

    def _read_sources(self) -> set[str]:
        with open(self.path, newline="", encoding="utf-8") as handle:
            if self.fmt == "jsonl":
                return {json.loads(line)["source"] for line in handle if line.strip()}
            reader = csv.DictReader(handle)
            if reader.fieldnames != self.columns:
                raise GmtnetError(f"{self.path}: its columns are not those of this prediction (other --task?)")
            return {row["source"] for row in reader}

    def _csv_text(self, rows: list[dict]) -> str:
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self.columns, restval="", extrasaction="ignore").writerows(rows)
        return buffer.getvalue()

    def _write_text(self, text: str) -> None:
        if self.handle is None:
            print(text, end="", flush=True)
            return
        self.handle.write(text)
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def write(self, results) -> None:
        """Append a chunk of results (durable on disk when this returns)."""
        if not results:
            return
        self._write_text(as_jsonl(results) if self.fmt == "jsonl" else self._csv_text([csv_row(r) for r in results]))
        self.done.update(r.source for r in results)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
