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
from gmtnet.prediction.predictor import CrystalPrediction
from gmtnet.prediction.properties import derived_properties
from gmtnet.tensors import ELASTIC, PIEZOELECTRIC, from_voigt, parent_type
from gmtnet.utils.io import lock_exclusive

STREAM_FORMATS = ("csv", "jsonl")


def _reference_columns(names) -> list[str]:
    """CSV columns for the tensors ``names`` (``Predictor.output_names``): those of a prediction
    with every field and property present."""
    reference = {"dielectric": np.eye(3),
                 "piezoelectric": from_voigt(np.arange(1.0, 19.0).reshape(3, 6), PIEZOELECTRIC),
                 "elastic": from_voigt(np.eye(6) + np.diag([1.0] * 3 + [0.0] * 3), ELASTIC)}
    tensors = {t: reference[parent_type(t).name] for t in names}
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


def _complete_lines(data: bytes) -> tuple[list[bytes], bool]:
    """(the complete lines of ``data``, whether a last line without its newline follows)."""
    lines = data.split(b"\n")
    return lines[:-1], bool(lines[-1])


class ResultWriter:
    """Appends CrystalPredictions of the tensors ``names`` (``Predictor.output_names``) to
    ``path`` as CSV or JSON Lines (``path`` None: standard output). ``done`` holds the sources
    already written (filled on resume).

    Safety: the file is locked while it is written (a second writer is refused); an existing
    file is refused unless ``resume`` (it is then checked to be gmtnet's output of the same
    columns before anything in it is changed) or ``overwrite`` (it is emptied, once locked)."""

    def __init__(self, path: Path | None, fmt: str, names, resume: bool = False, overwrite: bool = False):
        if fmt not in STREAM_FORMATS:
            raise GmtnetError(f"streaming output needs --format csv or jsonl, not {fmt!r}")
        self.path, self.fmt, self.done = (Path(path) if path else None), fmt, set()
        self.columns = _reference_columns(names) if fmt == "csv" else None
        self.handle = None
        if self.path is None:
            if resume:
                raise GmtnetError("--resume needs --out (the file to continue)")
            return
        if resume and overwrite:
            raise GmtnetError("--resume continues --out and --overwrite replaces it: give one of them")
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise GmtnetError(f"{self.path} exists: add --resume to continue it or --overwrite to replace it, "
                              "or choose another --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a", newline="", encoding="utf-8")
        try:
            lock_exclusive(handle, self.path)
            if exists and overwrite:
                handle.truncate(0)
                exists = False
            elif exists:
                self.done = self._check_and_read_sources()  # refuses a foreign file untouched
                _cut_partial_line(self.path)
        except BaseException:
            handle.close()
            raise
        self.handle = handle
        if fmt == "csv" and (not exists or self.path.stat().st_size == 0):
            self._write_text(self._csv_text([dict(zip(self.columns, self.columns))]))

    def _foreign(self, detail: str) -> GmtnetError:
        return GmtnetError(f"{self.path}: {detail}; it does not look like gmtnet's {self.fmt} output, "
                           "so it is left untouched (choose another --out)")

    def _check_and_read_sources(self) -> set[str]:
        """The sources of the rows in the file, after checking that every complete line is a row
        of this prediction (a JSON object with source and error / the expected CSV header)."""
        lines, partial = _complete_lines(self.path.read_bytes())
        if self.fmt == "jsonl":
            sources = set()
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise self._foreign(f"line {number} is not JSON") from None
                if not isinstance(row, dict) or not isinstance(row.get("source"), str) or "error" not in row:
                    raise self._foreign(f"line {number} is not a prediction row")
                sources.add(row["source"])
            if not sources and partial:
                raise self._foreign("it holds no complete line")
            return sources
        if not lines:
            raise self._foreign("it has no complete header line")
        header = next(csv.reader([lines[0].decode("utf-8", errors="replace")]), [])
        if header != self.columns:
            if header[:2] == ["source", "error"]:
                raise GmtnetError(f"{self.path}: its columns are not those of this prediction (other --task?)")
            raise self._foreign("its first line is not the header of gmtnet's CSV")
        text = b"\n".join(lines[1:]).decode("utf-8", errors="replace")
        return {row["source"] for row in csv.DictReader(io.StringIO(text), fieldnames=self.columns) if row.get("source")}

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
            self.handle = None
