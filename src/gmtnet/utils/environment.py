"""Hardware and version record written next to every benchmark result and report."""

from __future__ import annotations

import datetime
import importlib
import os
import platform


def _version(module: str) -> str | None:
    """The installed version of an optional module, or None."""
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def environment() -> dict:
    import e3nn
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "e3nn": e3nn.__version__,
        "numpy": numpy.__version__,
        "spglib": _version("spglib"),  # None e.g. on a GPU machine that runs exported graphs only
        "moyopy": _version("moyopy"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
