"""Screening from CIF files: `gmtnet predict FOLDER --format jsonl --out OUT --workers W`, all three
tasks, timed end to end, and where its time goes.

    python benchmarks/screening.py [--sizes 1000,4000] [--workers 0,1,2] [--compare COMMIT]

Writes the CIFs first (pymatgen's CifWriter, P1, as the Materials Project serves computed
structures): the MP-2026 elastic test split (1,103 crystals) first, then its validation and
training crystals for sizes above that. For each size and worker count it runs the command in a
fresh process (import, model loading and the screen itself all counted) and records the wall time,
crystals per second (the benchmark only waits: no monitoring shares the cores). The shipped
models and the command's defaults are used, nothing else.

The profile: the 1,000-CIF screen once more, in one process (--workers 0) under cProfile, with the
time of each stage of the pipeline (cumulative time of the functions that do it; the profiler
inflates Python-heavy stages, the shares are what it is for). With --compare, the same command and
profile also run with the code of another commit (checked out into a temporary git worktree, its
src folder first on PYTHONPATH), in the same run, so that before and after are measured side by
side on one machine.

Writes benchmarks/results/screening.{json,md}. Needs no download (MP-2026 ships with gmtnet).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Stages of `gmtnet predict` and the functions whose cumulative time measures each
#: (file suffix, function name); a stage's time is the largest of its functions' (they nest).
STAGES = {
    "read CIF (pymatgen)": [("gmtnet/data/structures.py", "read_structure")],
    "check structure, vacuum": [("gmtnet/data/structures.py", "validate_structure"),
                                ("gmtnet/data/structures.py", "vacuum_warning")],
    "symmetry analysis": [("gmtnet/symmetry/point_group.py", "crystal_symmetry")],
    "symmetrize structure": [("gmtnet/symmetry/refine.py", "refine_structure")],
    "graph": [("gmtnet/graph/neighbors.py", "build_graph")],
    "independent components": [("gmtnet/symmetry/constraints.py", "independent_components"),
                               ("gmtnet/prediction/predictor.py", "independent_components")],
    "point-group data per crystal": [("gmtnet/symmetry/point_group_data.py", "point_group_data")],
    "build the networks": [("gmtnet/prediction/pretrained.py", "load_pretrained")],
    "networks (batches)": [("gmtnet/prediction/predictor.py", "_run_models")],
    "derived properties": [("gmtnet/prediction/properties.py", "derived_properties")],
    "write JSONL": [("gmtnet/prediction/stream_output.py", "write")],
}


def write_cifs(n: int, folder: Path) -> list[str]:
    """The first n crystals of the MP-2026 elastic set (test, then val, then train) as CIFs."""
    from pymatgen.io.cif import CifWriter

    from gmtnet.data import load_dataset

    folder.mkdir(parents=True, exist_ok=True)
    records = [r for split in ("test", "val", "train") for r in load_dataset("elastic", source="mp2026", split=split)]
    if n > len(records):
        raise SystemExit(f"only {len(records)} crystals in the MP-2026 elastic set, asked for {n}")
    names = []
    for r in records[:n]:
        name = f"{r.material_id}.cif"
        CifWriter(r.structure).write_file(str(folder / name))
        names.append(name)
    return names


def stage_times(profile: Path) -> dict:
    """{stage: seconds} of a cProfile output, and the total profiled time."""
    stats = pstats.Stats(str(profile))
    total = max(v[3] for v in stats.stats.values())  # cumulative time of the outermost call
    out = {}
    for stage, functions in STAGES.items():
        seconds = [v[3] for (file, _, name), v in stats.stats.items()
                   if any(file.endswith(suffix) and name == fn for suffix, fn in functions)]
        out[stage] = max(seconds) if seconds else None
    return {"stages_s": out, "profiled_total_s": total}


def without_paths(text: str, tmp: Path) -> str:
    """``text`` with the benchmark's temporary folder written <tmp> and any other absolute path's
    folders written <path>/ (a result holds no path of the machine it ran on)."""
    return re.sub(r"(?<![\w.<>])/(?:[^\s/:]+/)+", "<path>/", text.replace(str(tmp), "<tmp>"))


def run_screen(folder: Path, out: Path, workers: str, src: str | None) -> dict:
    """One `gmtnet predict` over ``folder`` in a fresh process (``src``: that code instead)."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    cmd = [sys.executable, "-m", "gmtnet", "predict", str(folder), "--format", "jsonl", "--out", str(out)]
    if workers != "auto":
        cmd += ["--workers", workers]
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    rows = sum(1 for line in out.read_text().splitlines() if '"error": null' in line) if out.exists() else 0
    return {"returncode": done.returncode, "wall_s": wall, "predicted": rows,
            "stderr_tail": without_paths(done.stderr[-300:], folder.parent),
            # the largest resident size any child process of this benchmark has reached so far
            "max_child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def profile_screen(folder: Path, tmp: Path, label: str, src: str | None) -> dict:
    """The screen of ``folder`` once under cProfile, one process; the time per stage."""
    prof, out = tmp / f"{label}.prof", tmp / f"{label}-profiled.jsonl"
    env = dict(os.environ, PYTHONPATH=src) if src else None
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "gmtnet", "predict", str(folder),
                    "--format", "jsonl", "--out", str(out), "--workers", "0"],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return stage_times(prof)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000")
    parser.add_argument("--workers", default="0,1,2", help="worker counts to time (auto: the command's default)")
    parser.add_argument("--compare", default=None, help="another commit to time side by side (e.g. a release)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    from gmtnet.utils.environment import command_line, environment, git_commit, write_result

    sizes = [int(x) for x in args.sizes.split(",")]
    codes = {"this code": None}
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.compare:
            old = tmp / "old-checkout"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.compare], check=True,
                           cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            codes[f"commit {git_commit(old)}"] = str(old / "src")
        names = write_cifs(max(sizes), tmp / "all")
        for n in sizes:
            folder = tmp / f"cifs{n}"
            folder.mkdir()
            for name in names[:n]:
                os.link(tmp / "all" / name, folder / name)
            for workers in args.workers.split(","):
                for code, src in codes.items():  # side by side: the codes alternate
                    r = run_screen(folder, tmp / "out.jsonl", workers, src)
                    rows.append({"code": code, "structures": n, "workers": workers, **r,
                                 "crystals_per_s": n / r["wall_s"]})
                    print(json.dumps(rows[-1]), flush=True)
        for code, src in codes.items():
            profiles[code] = profile_screen(tmp / f"cifs{min(sizes)}", tmp, code.replace(" ", "-"), src)
            print(code, json.dumps(profiles[code]), flush=True)
        if args.compare:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "old-checkout")],
                           cwd=Path(__file__).parent, check=True)
    result = {"benchmark": "screening", "rows": rows, "profiles": profiles, "profile_size": min(sizes),
              "command": command_line(), "environment": environment()}
    print(write_result(args.out, "screening", result, report(result)))


def report(result: dict) -> str:
    env, rows = result["environment"], result["rows"]
    md = ["# Screening from CIF files: gmtnet predict FOLDER --format jsonl --out OUT --workers W", "",
          f"{env['date']}; {env['cpu']} ({env['cores_available']} cores); torch {env['torch']}; shipped models, "
          "all three tasks (seven networks), the command's defaults. MP-2026 elastic crystals as P1 CIFs (the "
          "test split first). Each run a fresh process: import, building the networks and the screen; the "
          "codes alternate run by run.", "",
          "| code | CIFs | workers | predicted | wall s | crystals/s |", "|---|---|---|---|---|---|"]
    md += [f"| {r['code']} | {r['structures']} | {r['workers']} | {r['predicted']} | {r['wall_s']:.1f} | "
           f"{r['crystals_per_s']:.1f} |" for r in rows]
    profiles = result["profiles"]
    codes = list(profiles)
    md += ["", f"## Where the time goes ({result['profile_size']} CIFs, one process, cProfile)", "",
           "Cumulative time of each stage's functions under the profiler (which inflates Python-heavy "
           "stages), and its share of the profiled run.", "",
           "| stage | " + " | ".join(f"{c} s (share)" for c in codes) + " |", "|---|" + "---|" * len(codes)]
    for stage in STAGES:
        cells = []
        for c in codes:
            s, total = profiles[c]["stages_s"][stage], profiles[c]["profiled_total_s"]
            cells.append("-" if s is None else f"{s:.2f} ({100 * s / total:.0f}%)")
        md.append(f"| {stage} | " + " | ".join(cells) + " |")
    md.append("| whole command (profiled) | " + " | ".join(f"{profiles[c]['profiled_total_s']:.2f}" for c in codes) + " |")
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
