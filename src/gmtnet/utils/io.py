"""Atomic file writes and the user data directory."""

from __future__ import annotations

import gzip
import json
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from gmtnet.errors import GmtnetError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (the tomli dependency)
    import tomli as tomllib


def parse_toml(text: str) -> dict:
    """The table a TOML document holds; ValueError (tomllib's TOMLDecodeError) if it is not TOML."""
    return tomllib.loads(text)


def data_dir() -> Path:
    """gmtnet's cache directory: ``$GMTNET_DATA`` or ``~/.cache/gmtnet``."""
    return Path(os.environ.get("GMTNET_DATA") or Path.home() / ".cache" / "gmtnet").expanduser()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place. A file it
    replaces keeps its permissions; a new file gets those of any new file (0666 less the umask),
    not the temporary file's 0600, so a cache shared by several users stays readable to them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
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


def _check_writable_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".gmtnet-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise GmtnetError(f"{what} {folder}: a file is in the way of this folder") from None
    except OSError as exc:
        raise GmtnetError(f"{what} {folder}: cannot write there ({exc.strerror or exc})") from None


def check_output_file(path: str | Path, what: str = "output") -> None:
    """Refuse, before any work, an output path that cannot be written: a folder, or a file in a
    folder that cannot be created or written. Writes nothing but a probe file it removes."""
    path = Path(path)
    if path.is_dir():
        raise GmtnetError(f"{what} {path}: is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise GmtnetError(f"{what} {path}: not writable")
    _check_writable_folder(path.parent if str(path.parent) else Path("."), what)


def check_output_folder(path: str | Path, what: str = "output folder") -> None:
    """Refuse, before any work, a folder that cannot be created or written (e.g. a file)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GmtnetError(f"{what} {path}: is a file, not a folder")
    _check_writable_folder(path, what)


def lock_exclusive(handle, path: Path) -> None:
    """Hold an exclusive advisory lock on the open ``handle`` until it is closed (or the process
    ends); GmtnetError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no locking
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise GmtnetError(f"{path} is being written by another gmtnet process; wait for it or choose another --out") from None


@contextmanager
def claimed_output(path: str | Path, overwrite: bool = False, option: str = "--out"):
    """Hold the output file ``path`` while a command computes what it will write there (then
    written with ``atomic_write_text``): an existing file is refused unless ``overwrite``, and
    the file is locked, so that a second command writing it at the same time is refused instead
    of silently losing one result. A file created here and never written is removed on exit."""
    path = Path(path)
    existed = path.exists()
    refusal = f"{option} {path} exists: add --overwrite to replace it, or choose another {option}"
    if existed and not overwrite:
        raise GmtnetError(refusal)
    try:  # without overwrite the file is created here or not at all (O_EXCL: no race with another run)
        handle = open(path, "a") if overwrite else os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "a")
    except FileExistsError:
        raise GmtnetError(refusal) from None
    try:
        lock_exclusive(handle, path)
    except BaseException:
        handle.close()
        raise
    try:
        yield path
    finally:
        try:
            unwritten = not existed and os.fstat(handle.fileno()).st_ino == path.stat().st_ino \
                and path.stat().st_size == 0
        except OSError:
            unwritten = False
        if unwritten:
            path.unlink(missing_ok=True)
        handle.close()
