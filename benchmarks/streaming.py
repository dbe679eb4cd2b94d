"""Memory and throughput of screening many structures with `gmtnet predict --list ... --out`.

    python benchmarks/streaming.py [--sizes 500,1000,2000,4000] [--workers 1]

Writes N distinct structure files (crystals of the dielectric set, each strained by a random
amount below 1%, as POSCAR) and a list file, then for each N runs

    gmtnet predict --list LIST --format csv --out OUT --workers W

(the shipped models, all three tasks) while sampling the memory (PSS: resident, shared pages counted
once) of the command and its DataLoader workers every 0.1 s. Peak memory that does not grow with N is what lets a run over
10^5 structures finish; the fit of peak memory against N is extrapolated to 10^5. For the largest
N the run is also interrupted half way and resumed, and the output checked for duplicates.
Writes benchmarks/results/streaming.json and .md. Needs `gmtnet data fetch` first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def _tree_rss_mib(pid: int) -> float:
    """Proportional set size (resident memory, pages shared after fork counted once) of ``pid``
    and all its descendants (Linux /proc), MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        stack += children.get(p, [])
        try:
            with open(f"/proc/{p}/smaps_rollup") as handle:
                total += next(float(line.split()[1]) for line in handle if line.startswith("Pss:")) / 1024.0
        except (OSError, StopIteration):
            pass
    return total


def run_monitored(cmd: list[str], stop_after_rows: int | None = None, out: Path | None = None) -> dict:
    """Run ``cmd``; peak tree RSS and wall time. With ``stop_after_rows``, send Ctrl-C (SIGINT)
    once ``out`` holds that many lines."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, interrupted = 0.0, False
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mib(proc.pid))
        if stop_after_rows and not interrupted and out is not None and out.exists():
            with open(out) as handle:
                if sum(1 for _ in handle) >= stop_after_rows:
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
        time.sleep(0.1)
    err = proc.stderr.read()
    return {"returncode": proc.returncode, "wall_s": time.perf_counter() - t0, "peak_rss_mib": peak,
            "interrupted": interrupted, "stderr_tail": err[-400:]}


def write_structures(n: int, folder: Path) -> Path:
    """n strained copies of the dielectric set's crystals as POSCAR files, and their list file."""
    import numpy as np

    from gmtnet.data import load_dataset

    base = [r.structure for r in load_dataset("dielectric")]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        s = base[i % len(base)].copy()
        strain = rng.uniform(-0.01, 0.01, size=(3, 3))
        s.apply_strain(0.5 * (strain + strain.T))
        name = f"s{i:06d}.vasp"
        s.to(filename=str(folder / name), fmt="poscar")
        names.append(name)
    listing = folder / "list.txt"
    listing.write_text("\n".join(names) + "\n")
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,1000,2000,4000")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]

    import numpy as np

    from _env import environment
    from gmtnet.utils.io import atomic_write_text

    gmtnet = [sys.executable, "-m", "gmtnet"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        listing = write_structures(max(sizes), Path(tmp) / "structures")
        names = listing.read_text().split()
        for n in sizes:
            sub = Path(tmp) / f"list{n}.txt"
            sub.write_text("\n".join(str(listing.parent / x) for x in names[:n]) + "\n")
            out = Path(tmp) / f"out{n}.csv"
            cmd = gmtnet + ["predict", "--list", str(sub), "--format", "csv", "--out", str(out),
                            "--workers", str(args.workers)]
            result = run_monitored(cmd)
            with open(out) as handle:
                written = sum(1 for _ in csv.DictReader(handle))
            rows.append({"structures": n, "rows_written": written, **result,
                         "crystals_per_s": n / result["wall_s"]})
            print(json.dumps(rows[-1]), flush=True)
        n = max(sizes)
        out = Path(tmp) / "resumed.csv"
        cmd = gmtnet + ["predict", "--list", str(Path(tmp) / f"list{n}.txt"), "--format", "csv", "--out", str(out),
                        "--workers", str(args.workers)]
        first = run_monitored(cmd, stop_after_rows=n // 2, out=out)
        with open(out) as handle:
            after_stop = sum(1 for _ in csv.DictReader(handle))
        second = run_monitored(cmd + ["--resume"])
        with open(out) as handle:
            sources = [r["source"] for r in csv.DictReader(handle)]
        resume = {"structures": n, "interrupt_sent": first["interrupted"], "rows_after_interrupt": after_stop,
                  "interrupt_returncode": first["returncode"],
                  "resume_returncode": second["returncode"], "rows_after_resume": len(sources),
                  "distinct_sources": len(set(sources)), "resume_wall_s": second["wall_s"]}
        print(json.dumps(resume), flush=True)
    x = np.array([r["structures"] for r in rows], dtype=float)
    y = np.array([r["peak_rss_mib"] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    extrapolated = float(intercept + slope * 1e5)
    result = {"benchmark": "streaming", "workers": args.workers, "rows": rows, "resume": resume,
              "peak_rss_fit_mib": {"intercept": float(intercept), "per_structure": float(slope)},
              "peak_rss_extrapolated_1e5_mib": extrapolated, "environment": environment()}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "streaming.json", json.dumps(result, indent=1) + "\n")
    env = result["environment"]
    md = [f"# Screening many structures: gmtnet predict --list ... --format csv --out ... --workers {args.workers}", "",
          f"{env['date']}; {env['cpu']} ({env['cores_available']} cores); torch {env['torch']}; shipped models, "
          "all three tasks; peak memory (PSS) of the command and its workers, sampled every 0.1 s.", "",
          "| structures | rows written | wall s | crystals/s | peak PSS MiB |", "|---|---|---|---|---|"]
    md += [f"| {r['structures']} | {r['rows_written']} | {r['wall_s']:.1f} | {r['crystals_per_s']:.1f} | "
           f"{r['peak_rss_mib']:.0f} |" for r in rows]
    md += ["", f"Linear fit of peak PSS against structures: {intercept:.0f} MiB + {slope * 1e3:.3f} MiB per 1000 "
           f"structures; extrapolated to 10^5 structures: {extrapolated:.0f} MiB.", "",
           f"Interrupt and resume ({n} structures): Ctrl-C after {resume['rows_after_interrupt']} rows "
           f"(exit {resume['interrupt_returncode']}), then --resume (exit {resume['resume_returncode']}): "
           f"{resume['rows_after_resume']} rows, {resume['distinct_sources']} distinct structures.", ""]
    atomic_write_text(args.out / "streaming.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
