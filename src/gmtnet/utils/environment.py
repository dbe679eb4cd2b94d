"""Hardware and version record written next to every benchmark result and report."""

from __future__ import annotations

import datetime
import json
import importlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def _version(module: str) -> str | None:
    """The installed version of an optional module, or None."""
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


#: Folders of results and documents: changes there do not make the code "dirty".
RESULT_FOLDERS = ("benchmarks/results", "reports", "docs")


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this gmtnet package), 12 hex
    digits, with "-dirty" when tracked files other than results and documents (``RESULT_FOLDERS``)
    differ from it; None outside a checkout."""
    folder = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)", *(f":(top,exclude){d}" for d in RESULT_FOLDERS)],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def portable_path(path: str) -> str:
    """``path`` without this machine's layout: relative to the working folder when inside it (or
    when already relative), else ``.../`` and its last two parts."""
    if not os.path.isabs(path):
        return path
    relative = os.path.relpath(path)
    if not relative.startswith(os.pardir):
        return relative
    return "/".join(["...", *Path(path).parts[-2:]])


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, as one could type it again, with no absolute path of this
    machine: the program and every path argument (also ``--option=PATH``) as ``portable_path``
    writes them."""
    argv = list(sys.argv if argv is None else argv)
    out = []
    for arg in argv:
        option, equals, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        out.append(option + equals + portable_path(value))
    return " ".join(shlex.quote(a) for a in ["python", *out])


def environment() -> dict:
    """Where and with what a result was measured: date (UTC), CPU, cores, versions, GPU, and the
    git commit of the gmtnet code."""
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
        "git_commit": git_commit(),
    }


def record_lines(env: dict, command: str | None = None) -> list[str]:
    """Markdown lines saying how a result was made: the command, the commit of the code, the
    machine and versions, the date (every benchmark result ends with them)."""
    gpu = f"; GPU {env['gpu']} (CUDA {env['cuda']})" if env.get("gpu") else ""
    return [f"- command: `{command}`" if command else "- command: (not recorded)",
            f"- code: gmtnet at commit {env.get('git_commit') or 'unknown (not a git checkout)'}",
            f"- machine: {env.get('cpu')}, {env.get('cores_available')} cores{gpu}; Python {env.get('python')}, "
            f"torch {env.get('torch')}, e3nn {env.get('e3nn')}, numpy {env.get('numpy')}, spglib {env.get('spglib')}, "
            f"moyopy {env.get('moyopy')}",
            f"- date: {env.get('date')}"]


def write_result(folder: str | Path, name: str, result: dict, report: str) -> str:
    """Write a benchmark's ``result`` as ``folder/name.json`` and its markdown ``report`` followed
    by its ``record_lines`` (from ``result["environment"]`` and ``result["command"]``) as
    ``folder/name.md``, both atomically (the folder is created); returns the markdown."""
    from gmtnet.utils.io import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = report + "\n" + "\n".join(record_lines(result["environment"], result.get("command"))) + "\n"
    atomic_write_text(folder / f"{name}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(folder / f"{name}.md", text)
    return text
