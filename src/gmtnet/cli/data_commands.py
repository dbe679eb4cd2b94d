"""``gmtnet data ...``: fetch the benchmark, inspect datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from gmtnet.tensors import TENSOR_TYPES, get_tensor_type

app = typer.Typer(help="Fetch and inspect tensor datasets.", no_args_is_help=True)

TASK_HELP = "dielectric, piezoelectric or elastic"


@app.command()
def fetch(
    root: Optional[Path] = typer.Option(None, help="Data directory (default $GMTNET_DATA or ~/.cache/gmtnet)."),
    force: bool = typer.Option(False, help="Download and curate again even if cached."),
) -> None:
    """Download the Materials Project tensor sets (matminer 0.3.9 via pip) and curate them."""
    from gmtnet.data.sources import mp

    raw = mp.fetch(root, force=force)
    typer.echo(f"raw CSVs in {raw}")
    for task in TENSOR_TYPES:
        dataset = mp.curate(task, root, progress=True) if force else mp.load(task, root, progress=True)
        typer.echo(f"{task}: {dataset.report.summary()}")


@app.command()
def info(
    task: str = typer.Argument(..., help=TASK_HELP),
    source: str = typer.Option("mp", help="mp (matminer benchmark), mp2026 (elastic and piezoelectric), mp-dfpt "
                               "(dielectric with electronic and ionic parts), jarvis or file; several joined by +."),
    path: Optional[Path] = typer.Option(None, help="Data file for --source jarvis/file."),
    symprec: float = typer.Option(1e-3, help="spglib tolerance (Angstrom) of the curation."),
    root: Optional[Path] = typer.Option(None, help="Data directory (cache) for --source mp, mp2026 and mp-dfpt."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    issues: bool = typer.Option(False, "--issues", help="Also list every removed record and why, and the records kept with a warning."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Open a --source jarvis pickle "
                                      "(a pickle can run code when read: only a file you trust)."),
) -> None:
    """Counts per split and crystal system, label statistics, curation removals."""
    from gmtnet.data import load_dataset
    from gmtnet.data.info import format_summary, summarize

    ttype = get_tensor_type(task)
    dataset = load_dataset(ttype.name, source=source, path=path, symprec=symprec, root=root, progress=True,
                           trust_pickle=trust_pickle)
    summary = summarize(dataset)
    if issues and dataset.report is not None:
        summary["issues"] = [vars(i) for i in dataset.report.issues]
        summary["warnings"] = [vars(i) for i in dataset.report.warnings]
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(format_summary(summary, ttype.unit))
    if issues and dataset.report is not None:
        for issue in dataset.report.issues:
            typer.echo(f"  removed {issue.record_id}: [{issue.rule}] {issue.message}")
        for warning in dataset.report.warnings:
            typer.echo(f"  kept {warning.record_id}: [{warning.rule}] {warning.message}")
