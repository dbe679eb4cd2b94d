"""Atomic file writes and the user data directory."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path


def data_dir() -> Path:
    """gmtnet's cache directory: ``$GMTNET_DATA`` or ``~/.cache/gmtnet``."""
    return Path(os.environ.get("GMTNET_DATA") or Path.home() / ".cache" / "gmtnet").expanduser()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json_gz(path: str | Path, obj) -> Path:
    """Atomically write ``obj`` as gzip-compressed JSON (floats round-trip exactly)."""
    return atomic_write_bytes(path, gzip.compress(json.dumps(obj).encode("utf-8"), mtime=0))


def read_json_gz(path: str | Path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)
