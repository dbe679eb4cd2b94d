"""Progress bars for long work: shown on a terminal, silent when output goes to a file or pipe."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable=None, enabled: bool = True, **kwargs):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``) when ``enabled`` and standard
    error is a terminal; a silent one otherwise. ``kwargs`` go to tqdm (desc, unit, total, ...)."""
    return tqdm(iterable, disable=None if enabled else True, **kwargs)


__all__ = ["progress_bar"]
