"""Memory and throughput of screening many structures with `gmtnet predict --list ... --out`.

    python benchmarks/streaming.py [--sizes 500,1000,2000,4000] [--workers 1]

Writes N distinct structure files (crystals of the dielectric set, each strained by a random
amount below 1%, as POSCAR) and a list file, then for each N runs

    gmtnet predict --list LIST --format csv --out OUT --workers W

(the shipped models, all three tasks) while sampling the memory (PSS: resident, shared pages counted
once) of the command and its DataLoader workers every 0.1 s. Peak memory that does not grow with N is what lets a run over
10^5 structures finish; the fit of peak memory against N is extrapolated to 10^5. For the largest
N the run is also killed half way (SIGKILL) and resumed, and the output checked for duplicates.
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


def run_monitored(cmd: list[str], kill_after_rows: int | None = None, out: Path | None = None) -> dict:
    """Run ``cmd``; peak memory and wall time. With ``kill_after_rows``, kill the command and its
    workers outright (SIGKILL: no clean-up at all, the harshest interruption) once ``out`` holds
    that many lines."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, start_new_session=True)
        peak, killed = 0.0, False
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mib(proc.pid))
            if kill_after_rows and not killed and out is not None and out.exists():
                with open(out) as handle:
                    if sum(1 for _ in handle) >= kill_after_rows:
                        os.killpg(proc.pid, signal.SIGKILL)
                        killed = True
            time.sleep(0.1)
        err.seek(0)
        tail = err.read()[-400:]
    if out is not None:  # no path of this machine in the result
        tail = tail.replace(str(out.parent), "<tmp>")
    return {"returncode": proc.returncode, "wall_s": time.perf_counter() - t0, "peak_rss_mib": peak,
            "killed": killed, "stderr_tail": tail}


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
    parser.add_argument("--report", type=Path, default=None,
                        help="only recompute the fits and the markdown of a result JSON (rewritten next to it)")
    args = parser.parse_args()
    from gmtnet.utils.environment import command_line, environment, write_result

    if args.report:
        result = json.loads(args.report.read_text())
        result |= memory_fits(result["rows"])
        print(write_result(args.report.parent, args.report.stem, result, report(result)))
        return
    sizes = [int(x) for x in args.sizes.split(",")]

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
        first = run_monitored(cmd, kill_after_rows=n // 2, out=out)
        with open(out) as handle:
            after_stop = sum(1 for _ in handle) - 1  # data lines, a cut last line included
        second = run_monitored(cmd + ["--resume"])
        with open(out) as handle:
            sources = [r["source"] for r in csv.DictReader(handle)]
        resume = {"structures": n, "killed": first["killed"], "lines_after_kill": after_stop,
                  "kill_returncode": first["returncode"],
                  "resume_returncode": second["returncode"], "rows_after_resume": len(sources),
                  "distinct_sources": len(set(sources)), "resume_wall_s": second["wall_s"]}
        print(json.dumps(resume), flush=True)
    result = {"benchmark": "streaming", "workers": args.workers, "rows": rows, "resume": resume,
              **memory_fits(rows), "command": command_line(), "environment": environment()}
    print(write_result(args.out, "streaming", result, report(result)))


def memory_fits(rows: list[dict]) -> dict:
    """Peak memory against structures: a line through all sizes, and the slope between the two
    largest (taken as 0 if memory fell), each extrapolated to 10^5 structures (MiB)."""
    import numpy as np

    x = np.array([r["structures"] for r in rows], dtype=float)
    y = np.array([r["peak_rss_mib"] for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    last_slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    return {"peak_rss_fit_mib": {"intercept": float(intercept), "per_structure": float(slope)},
            "peak_rss_extrapolated_1e5_mib": float(intercept + slope * 1e5),
            "peak_rss_last_interval_per_structure_mib": float(last_slope),
            "peak_rss_extrapolated_1e5_last_interval_mib": float(y[-1] + max(last_slope, 0.0) * (1e5 - x[-1]))}


def report(result: dict) -> str:
    rows, resume, env, n = result["rows"], result["resume"], result["environment"], result["resume"]["structures"]
    fit = result["peak_rss_fit_mib"]
    md = [f"# Screening many structures: gmtnet predict --list ... --format csv --out ... --workers {result['workers']}", "",
          f"{env['date']}; {env['cpu']} ({env['cores_available']} cores); torch {env['torch']}; shipped models, "
          "all three tasks; peak memory (PSS) of the command and its workers, sampled every 0.1 s.", "",
          "| structures | rows written | wall s | crystals/s | peak PSS MiB |", "|---|---|---|---|---|"]
    md += [f"| {r['structures']} | {r['rows_written']} | {r['wall_s']:.1f} | {r['crystals_per_s']:.1f} | "
           f"{r['peak_rss_mib']:.0f} |" for r in rows]
    md += ["", f"Extrapolation to 10^5 structures: a line through all sizes ({fit['intercept']:.0f} MiB + "
           f"{fit['per_structure'] * 1e3:.1f} MiB per 1000 structures) gives "
           f"{result['peak_rss_extrapolated_1e5_mib']:.0f} MiB; the slope between the two largest sizes "
           f"({result['peak_rss_last_interval_per_structure_mib'] * 1e3:.1f} MiB per 1000, taken as 0 if negative) gives "
           f"{result['peak_rss_extrapolated_1e5_last_interval_mib']:.0f} MiB.", "",
           f"Kill and resume ({n} structures): the command and its worker killed (SIGKILL) once the output "
           f"held {resume['lines_after_kill']} data lines (exit {resume['kill_returncode']}), then the same "
           f"command with --resume (exit {resume['resume_returncode']}, {resume['resume_wall_s']:.0f} s): "
           f"{resume['rows_after_resume']} rows, {resume['distinct_sources']} distinct structures.", ""]
    return "\n".join(md)


if __name__ == "__main__":
    main()
