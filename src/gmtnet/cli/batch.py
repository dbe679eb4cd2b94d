"""How every command treats a batch of files: a bad file gets one ``error:`` line and the batch
goes on; the command fails (status 1) when a single given file, or every file, fails."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from gmtnet.data.structures import structure_files
from gmtnet.errors import GmtnetError

#: The problems of one item that a batch reports and survives.
ITEM_ERRORS = (GmtnetError, ValueError, OSError, MemoryError)


def expand_structure_paths(paths, listed: list[Path] = (), named=()) -> list[Path]:
    """The structure files of ``paths`` (folders expanded), then ``listed`` ones (e.g. read from a
    list file named in ``named``); refuses an empty result, naming what was searched."""
    files = structure_files(paths or []) + list(listed)
    if not files:
        raise GmtnetError("no structure files found in " + ", ".join(map(str, [*(paths or []), *named])))
    return files


class BatchErrors:
    """Counts the failed items of a batch of ``n_items`` and prints each failure as one line."""

    def __init__(self, n_items: int):
        self.n_items, self.failed = n_items, 0

    @contextmanager
    def item(self, name):
        try:
            yield
        except BrokenPipeError:
            raise  # the reader went away: not this item's problem
        except ITEM_ERRORS as exc:
            self.failed += 1
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            prefix = f"{name}: "
            typer.echo(f"error: {message if message.startswith(prefix) else prefix + message}", err=True)

    def exit_if_failed(self) -> None:
        """Exit with status 1 when a single item, or every item, failed."""
        if self.failed and (self.n_items == 1 or self.failed == self.n_items):
            raise typer.Exit(1)
