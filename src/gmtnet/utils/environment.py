"""Hardware and version record written next to every benchmark result and report."""

from __future__ import annotations

import datetime
import os
import platform


def environment() -> dict:
    import e3nn
    import numpy
    import torch

    try:
        import spglib

        spglib_version = spglib.__version__
    except ImportError:  # e.g. a GPU machine that only runs the model on exported graphs
        spglib_version = None

    try:
        import moyopy

        moyopy_version = moyopy.__version__
    except ImportError:
        moyopy_version = None

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
        "spglib": spglib_version,
        "moyopy": moyopy_version,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
