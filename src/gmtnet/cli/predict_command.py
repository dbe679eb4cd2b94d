"""``gmtnet predict``: tensors, derived properties and pictures for structure files."""

from __future__ import annotations

from pathlib import Path

import typer


def predict(
    paths: list[Path] = typer.Argument(..., help="Structure files (CIF, POSCAR, anything pymatgen/ASE reads) or folders."),
    task: str = typer.Option("all", help="dielectric, piezoelectric, elastic or all."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    out: Path = typer.Option(None, help="Write the output to this file (atomically) instead of the screen."),
    plot: Path = typer.Option(None, help="Write response-surface PNGs into this folder."),
    model: list[str] = typer.Option(None, help="Use TASK=MODEL_FILE instead of a shipped model (repeatable)."),
) -> None:
    """Predict the tensors of crystals with the shipped models (exact symmetry, input frame)."""
    from gmtnet.errors import GmtnetError
    from gmtnet.model import load_model
    from gmtnet.prediction.formatting import FORMATS
    from gmtnet.prediction.predictor import Predictor, expand_paths
    from gmtnet.utils.io import atomic_write_text

    if fmt not in FORMATS:
        raise GmtnetError(f"unknown format {fmt!r}: expected table, json or csv")
    models = {}
    for spec in model or []:
        name, sep, file = spec.partition("=")
        if not sep:
            raise GmtnetError(f"--model expects TASK=FILE, got {spec!r}")
        m = load_model(file)
        models[m.config.task] = m
    files = expand_paths(paths)
    if not files:
        raise GmtnetError("no structure files found in " + ", ".join(map(str, paths)))
    predictor = Predictor(task, models)
    results = predictor.predict(files, progress=len(files) > 1)
    text = FORMATS[fmt](results)
    failed = [r for r in results if not r.ok]
    if out is not None and len(failed) == len(results):
        pass  # nothing predicted: leave an existing output file as it is
    elif out is not None:
        atomic_write_text(out, text)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(text, nl=False)
    if plot is not None:
        from gmtnet.prediction.plots import plot_surface

        for r in results:
            if not r.ok:
                continue
            stem = Path(r.source).stem
            for t, tensor in r.tensors.items():
                if t == "elastic" and not r.properties.get("elastic", {}).get("born_stable", True):
                    typer.echo(f"{r.source}: elastic surface skipped (predicted stiffness not positive definite)", err=True)
                    continue
                if t == "piezoelectric" and not abs(tensor).max():
                    continue  # centrosymmetric: the surface is a point
                path = plot_surface(t, tensor, plot / f"{stem}_{t}.png",
                                    title=f"{r.formula} ({r.spacegroup_symbol}): {t}")
                typer.echo(f"plot: {path}", err=True)
    if failed:
        for r in failed:
            typer.echo(f"error: {r.source}: {r.error}", err=True)
        if len(files) == 1 or len(failed) == len(results):
            raise typer.Exit(1)
