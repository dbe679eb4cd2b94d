"""The paper's experiments (section 5.2-5.3, appendix A.3-A.4) as one command per table.

Each table is a list of runs (model, task, overrides), read from a TOML file
(``gmtnet.training.experiment``: the shipped tables, or a file of your own). A run trains with the paper's protocol
(or the quick settings) unless its run directory already holds a finished run, then it is
evaluated on the test split. The table lands in ``reports/<table>[-quick].md`` with the date, the
hardware, the command and the wall time. Full-mode run directories are ``runs/<label>-<task>``,
the same as ``gmtnet train``'s default, so models trained by hand are reused: a finished run (all
the epochs its own config asked for) is evaluated as it is, and the table states its epochs.

On the MP-2026 benchmark (``source="mp2026"``: tables whose runs are elastic or piezoelectric)
runs live in ``runs/mp2026/`` and the table in ``reports/<table>-mp2026[-quick].md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gmtnet.data import load_dataset
from gmtnet.errors import GmtnetError
from gmtnet.model.io import load_ensemble, load_model
from gmtnet.tensors import get_tensor_type
from gmtnet.training import TrainConfig, train
from gmtnet.training.experiment import Run, packaged_tables, read_experiment
from gmtnet.training.evaluate import _pct, axis_rotation, evaluate_model, evaluate_predictions, interval_text, trivial_tensor
from gmtnet.training.metrics import TensorMetrics
from gmtnet.training.timing import training_step_times
from gmtnet.utils.environment import environment
from gmtnet.utils.io import atomic_write_text

QUICK = {"epochs": 2, "limit": 64, "val_limit": 8}
ROTATIONS_DEG = 45.0


#: The shipped tables (``gmtnet/training/tables/*.toml``), by name.
TABLES: dict[str, dict] = packaged_tables()
ALIASES = {"table2": "table2-4", "table3": "table2-4", "table4": "table2-4"}


def _finished(run_dir: Path) -> bool:
    """A run directory whose training ran all the epochs its own config asked for."""
    log, config = run_dir / "log.json", run_dir / "config.json"
    if not ((run_dir / "best.pt").is_file() and log.is_file() and config.is_file()):
        return False
    return len(json.loads(log.read_text())) >= json.loads(config.read_text())["epochs"]


def runs_folder(runs_root: Path, source: str, quick: bool) -> Path:
    """Where a table's run directories live: RUNS[/SOURCE][/quick] (no SOURCE folder for "mp",
    so that runs trained by hand with ``gmtnet train``'s default are reused)."""
    return Path(runs_root) / ("" if source == "mp" else source) / ("quick" if quick else "")


# the paper's tables are reproduced on the paper's graph, with structures as given (GMTNet models),
# each tensor predicted whole (no electronic and ionic dielectric parts)
PAPER_GRAPH = {"graph": "knn", "refine_structure": False}


def train_run(run: Run, quick: bool, epochs: int, preset: str, runs_root: Path, data_root, progress: bool,
              threads: int = 0, device: str = "cpu", compile_kernels: bool = False, source: str = "mp") -> list[Path]:
    """Train (or resume, or reuse) a run's seeds on ``source``'s data; returns their best.pt files."""
    settings = dict(QUICK, limit=min(QUICK["limit"], run.limit or QUICK["limit"])) if quick else \
        {"epochs": epochs, "limit": run.limit, "val_limit": None}
    bests = []
    for seed, run_dir in zip(run.seeds, run.run_dirs(runs_folder(runs_root, source, quick))):
        init_from = str(run_dir.parent / run.init_from / "best.pt") if run.init_from else None
        cfg = TrainConfig(task=run.task, model=run.model, preset=run.preset or preset, group_average=run.group_average,
                          loss=run.loss, seed=seed, out=str(run_dir), data_root=data_root, source=source,
                          init_from=init_from, exclude=run.exclude, parts=False,
                          model_overrides={**(PAPER_GRAPH if run.model == "gmtnet" else {}), **run.model_overrides},
                          threads=threads, device=device, orbits=False,  # the paper's tables: atom by atom
                          compile=compile_kernels, **settings)
        if not _finished(run_dir):
            train(cfg, resume=(run_dir / "last.pt").is_file(), progress=progress)
        bests.append(run_dir / "best.pt")
    return bests


def _load_run_model(bests: list[Path]):
    """The trained model of a run: the one model, or the ensemble of its seeds' models."""
    if len(bests) == 1:
        return load_model(bests[0])
    ensemble = load_ensemble(bests)
    ensemble.metadata = {"epoch": "/".join(str(m.metadata.get("epoch")) for m in ensemble.members)}
    return ensemble


def reference_row(task: str, limit: int | None, train, test) -> tuple[str, TensorMetrics]:
    """A trivial predictor's row: "zero" (limit None) or the mean label of the first ``limit``
    training crystals; the same metrics and interval as the trained models."""
    labels = np.stack([r.tensor for r in test])
    constant = trivial_tensor(None if limit is None else train[:limit], labels.shape[1:])
    metrics = evaluate_predictions(np.broadcast_to(constant, labels.shape), test, task)["overall"]
    return ("zero" if limit is None else f"train-mean-n{limit}"), metrics


def _metrics_row(label: str, task: str, m, unit: str, epochs: str) -> str:
    return (f"| {label} | {task} | {_pct(m.zero_success)} | {_pct(m.equality_success)} | "
            f"{m.fnorm:.3f}{(' ' + unit) if unit else ''} | {interval_text(m.fnorm_ci95)} | "
            f"{_pct(m.ewt25)} | {_pct(m.ewt10)} | {_pct(m.ewt5)} | {epochs} |")


def _time_per_batch(model, records, n_batches: int = 3, batch_size: int = 64) -> float:
    """Median seconds of forward + backward + AdamW step on batches of the training set."""
    records = records[: batch_size * n_batches]
    _, steps = training_step_times(model, [model.graph(r.structure) for r in records],
                                   np.stack([r.tensor for r in records]), batch_size)
    return float(np.median(steps))


BENCHMARKS = {"mp": "the Materials Project benchmark (matminer 0.3.9)",
              "mp2026": "the MP-2026 benchmark (Materials Project, 2026)"}
SOURCE_TASKS = {"mp": ("dielectric", "piezoelectric", "elastic"), "mp2026": ("piezoelectric", "elastic")}


def reproduce(table: str, quick: bool = False, epochs: int = 200, preset: str = "fast", runs_root="runs",
              reports="reports", data_root=None, progress: bool = True, threads: int = 0, device: str = "cpu",
              compile_kernels: bool = False, command: str = "", source: str = "mp") -> Path:
    """Train what ``table`` needs on ``source``'s data ("mp" or "mp2026"), evaluate on its test
    split, write the markdown report (``REPORTS/<table>[-<source>][-quick].md``); returns its path.
    ``table`` names a shipped table or is the path of a TOML experiment file (its report is named
    after the file)."""
    table = ALIASES.get(table, table)
    if str(table).endswith(".toml"):
        spec, table = read_experiment(table), Path(table).stem
    elif table in TABLES:
        spec = TABLES[table]
    else:
        raise GmtnetError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}, or an experiment FILE.toml")
    if source not in BENCHMARKS:
        raise GmtnetError(f"reproduce runs on the benchmarks {', '.join(BENCHMARKS)}, not {source!r}")
    kind, t0 = spec.get("kind", "metrics"), time.perf_counter()
    missing = sorted({run.task for run in spec["runs"]} - set(SOURCE_TASKS[source]))
    if missing:
        raise GmtnetError(f"{table} needs {', '.join(missing)} runs, which the {source} source has no data for")
    runs_root = Path(runs_root)
    rows, results, datasets = [], {}, {}
    for run in spec["runs"]:
        bests = train_run(run, quick, epochs, preset, runs_root, data_root, progress, threads, device, compile_kernels,
                          source)
        model = _load_run_model(bests)
        if run.task not in datasets:
            datasets[run.task] = load_dataset(run.task, source=source, root=data_root)
        test = datasets[run.task].split("test")
        unit = model.ttype.unit
        run_config = json.loads((bests[0].parent / "config.json").read_text())
        entry = {"label": run.label, "task": run.task, "parameters": model.n_parameters(),
                 "best_epoch": model.metadata.get("epoch"), "epochs": run_config["epochs"]}
        if kind == "timing":
            entry["seconds_per_batch"] = _time_per_batch(model, datasets[run.task].split("train"))
            rows.append(f"| {run.label} | {entry['parameters']:,} | {entry['seconds_per_batch']:.3f} |")
        elif kind == "rotations":
            fn = {"none": evaluate_model(model, test)["overall"].fnorm}
            for axis in "xyz":
                fn[axis] = evaluate_model(model, test, rotation=axis_rotation(axis, ROTATIONS_DEG))["overall"].fnorm
            entry["fnorm"] = fn
            rows.append(f"| {run.label} | " + " | ".join(f"{fn[k]:.4f}" for k in ("none", "x", "y", "z")) + " |")
        else:
            m = evaluate_model(model, test)["overall"]
            entry["metrics"] = m.to_dict()
            rows.append(_metrics_row(run.label, run.task, m, unit, f"{entry['best_epoch']} / {entry['epochs']}"))
        results[f"{run.label}-{run.task}"] = entry
    if spec.get("references"):
        task = spec["runs"][0].task
        train, test = datasets[task].split("train"), datasets[task].split("test")
        for limit in spec["references"]:
            limit = min(QUICK["limit"], limit) if quick and limit else limit  # as the runs' quick setting
            label, m = reference_row(task, limit, train, test)
            rows.append(_metrics_row(label, task, m, get_tensor_type(task).unit, "no training"))
            results[f"{label}-{task}"] = {"label": label, "task": task, "metrics": m.to_dict()}
    if kind == "timing":
        header = "| model | parameters | s per training batch of 64 (CPU) |\n|---|---|---|"
    elif kind == "rotations":
        header = "| model | Fnorm, original frame | rotated about x | about y | about z |\n|---|---|---|---|---|"
    else:
        header = ("| model | task | zero success | equality success | Fnorm | Fnorm 95% interval | EwT25 | EwT10 | EwT5 "
                  "| best epoch / epochs |\n|---|---|---|---|---|---|---|---|---|---|")
    env = environment()
    wall = time.perf_counter() - t0
    default_command = ("gmtnet reproduce " + table + (" --quick" if quick else "")
                       + ("" if source == "mp" else " --source " + source))
    mode = "quick (2 epochs on 64 training crystals: checks the pipeline, not the science)" if quick else \
        (f"full (new runs: {epochs} epochs, GMTNet preset {preset!r}; finished runs in runs/ are reused "
         "and their epochs shown)")
    text = (f"# {spec['title']}\n\n{mode}; test split of {BENCHMARKS[source]}.\n\n"
            f"{header}\n" + "\n".join(rows) + "\n\n"
            f"- command: `{command or default_command}`\n"
            f"- date: {env['date']}; hardware: {env['cpu']}, {env['cores_available']} cores; torch {env['torch']}\n"
            f"- wall time of this command: {wall:.0f} s (training reused where a finished run existed)\n")
    path = Path(reports) / f"{table}{'' if source == 'mp' else '-' + source}{'-quick' if quick else ''}.md"
    atomic_write_text(path, text)
    atomic_write_text(path.with_suffix(".json"), json.dumps({"table": table, "quick": quick, "source": source,
                                                             "results": results,
                                                             "environment": env, "wall_s": wall}, indent=1) + "\n")
    return path
