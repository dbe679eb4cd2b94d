"""``gmtnet predict``: tensors, derived properties and pictures for structure files."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer

from gmtnet.symmetry import PREDICTION_BACKEND


def read_list_file(path: Path) -> list[Path]:
    """Structure paths listed one per line (blank lines and '#' comments skipped); relative paths
    are relative to the list file's folder."""
    from gmtnet.errors import GmtnetError

    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise GmtnetError(f"{path}: cannot read the list file ({exc.strerror or exc})") from exc
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def _report_error(result) -> None:
    """One ``error:`` line naming the structure (once, also when the reason starts with it)."""
    prefix = f"{result.source}: "
    typer.echo(f"error: {result.error if result.error.startswith(prefix) else prefix + result.error}", err=True)


def _report_warnings(result) -> None:
    for text in result.warnings:
        typer.echo(f"warning: {result.source}: {text}", err=True)


def _plot(result, folder: Path) -> None:
    from gmtnet.prediction.plots import plot_surface
    from gmtnet.prediction.predictor import TASKS

    stem = Path(result.source).stem
    for t, tensor in result.tensors.items():
        if t not in TASKS:
            continue  # a part (e.g. the ionic dielectric tensor): the total's surface is drawn
        if t == "elastic" and not result.properties.get("elastic", {}).get("born_stable", True):
            typer.echo(f"{result.source}: elastic surface skipped (predicted stiffness not positive definite)", err=True)
            continue
        if t == "piezoelectric" and not abs(tensor).max():
            continue  # centrosymmetric: the surface is a point
        path = plot_surface(t, tensor, folder / f"{stem}_{t}.png",
                            title=f"{result.formula} ({result.spacegroup_symbol}): {t}")
        typer.echo(f"plot: {path}", err=True)


def predict(
    paths: list[Path] = typer.Argument(None, help="Structure files (CIF, POSCAR, anything pymatgen/ASE reads) or folders."),
    task: str = typer.Option("all", help="dielectric, piezoelectric, elastic or all."),
    fmt: str = typer.Option("table", "--format", help="table, json, csv or jsonl (csv with --out, and jsonl, stream)."),
    out: Path = typer.Option(None, help="Write the output to this file instead of the screen."),
    plot: Path = typer.Option(None, help="Write response-surface PNGs into this folder."),
    model: list[str] = typer.Option(None, help="Use TASK=MODEL_FILE instead of a shipped model (repeatable)."),
    list_file: Path = typer.Option(None, "--list", help="A file listing structure paths, one per line."),
    workers: int = typer.Option(-1, help="DataLoader processes reading and preprocessing structures "
                                "(-1: none for under 256 structures, else up to 4)."),
    resume: bool = typer.Option(False, "--resume", help="Streaming: continue --out, skipping structures already in it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out (refused otherwise)."),
    chunk_size: int = typer.Option(256, help="Streaming: structures per chunk (memory is bounded by a few chunks)."),
    symmetry_backend: str = typer.Option(PREDICTION_BACKEND, help="moyopy (default; 2-5x faster symmetry analysis) or "
                                         "spglib (the benchmark's definition); they differ only for crystals at the "
                                         "tolerance."),
    orbits: bool = typer.Option(True, "--orbits/--all-atoms", help="Evaluate the networks at one atom per orbit of "
                                "symmetry-equivalent atoms (2-4x faster; the same function for a symmetric "
                                "crystal) or at every atom."),
    refine: bool = typer.Option(True, "--symmetrize/--raw-structure", help="Move each structure within symprec onto "
                                "its exactly symmetric form before its graph (default: predictions then move "
                                "continuously with the input), or use it as given."),
    compile_kernels: bool = typer.Option(False, "--compile", help="torch.compile the models' hot kernels first "
                                         "(1-2 min once; about 1.3x more crystals/s, worth it for large screens)."),
) -> None:
    """Predict the tensors of crystals with the shipped models (exact symmetry, input frame).

    With --format jsonl, or --format csv and --out, results stream:
    they are written chunk by chunk as they are predicted (memory stays
    bounded for any number of structures), and an interrupted run
    continues with --resume without redoing what is already written."""
    from gmtnet.errors import GmtnetError
    from gmtnet.model import load_model
    from gmtnet.model.io import read_model_config
    from gmtnet.tensors import get_tensor_type
    from gmtnet.prediction.formatting import FORMATS
    from gmtnet.cli.batch import expand_structure_paths
    from gmtnet.prediction.predictor import Predictor, available_cores
    from gmtnet.utils.io import atomic_write_text, check_output_file, check_output_folder, claimed_output

    if fmt not in FORMATS:
        raise GmtnetError(f"unknown format {fmt!r}: expected table, json, csv or jsonl")
    if workers < -1:
        raise GmtnetError(f"--workers must be -1 (automatic), 0 or more, got {workers}")
    if chunk_size < 1:
        raise GmtnetError(f"--chunk-size must be at least 1, got {chunk_size}")
    streaming = fmt == "jsonl" or (fmt == "csv" and out is not None)
    if resume and not (streaming and out is not None):
        raise GmtnetError("--resume needs a streamed output: --format csv or jsonl with --out")
    if out is not None:  # found before any prediction, not after
        check_output_file(out, "--out")
    if plot is not None:
        check_output_folder(plot, "--plot")
    models = {}
    for spec in model or []:
        name, sep, file = spec.partition("=")
        if not sep or not file:
            raise GmtnetError(f"--model expects TASK=FILE, got {spec!r}")
        wanted = get_tensor_type(name).name
        task_of_file = read_model_config(file).task  # refused before the network is built
        if task_of_file != wanted:
            raise GmtnetError(f"--model {spec}: {file} predicts {task_of_file} tensors, not {wanted}")
        if wanted in models:
            raise GmtnetError(f"--model names two files for {wanted}")
        models[wanted] = load_model(file)
    files = expand_structure_paths(paths, read_list_file(list_file) if list_file else [], [list_file] if list_file else [])
    if workers < 0:
        workers = 0 if len(files) < 256 else max(0, min(4, available_cores() - 1))
    predictor = Predictor(task, models, symmetry_backend=symmetry_backend, orbits=orbits, refine=refine)
    if compile_kernels:
        for m in predictor.models.values():
            m.compile_kernels()
    if streaming:
        _stream(predictor, files, fmt, out, plot, workers, resume, overwrite, chunk_size)
        return
    with claimed_output(out, overwrite) if out is not None else nullcontext():
        results = predictor.predict(files, progress=len(files) > 1, workers=workers)
        text = FORMATS[fmt](results)
        failed = [r for r in results if not r.ok]
        if out is not None and len(failed) == len(results):
            pass  # nothing predicted: leave an existing output file as it is
        elif out is not None:
            atomic_write_text(out, text)
            typer.echo(f"wrote {out}", err=True)
        else:
            typer.echo(text, nl=False)
    for r in results:
        _report_warnings(r)
    if plot is not None:
        for r in results:
            if r.ok:
                _plot(r, plot)
    if failed:
        for r in failed:
            _report_error(r)
        if len(files) == 1 or len(failed) == len(results):
            raise typer.Exit(1)


def _stream(predictor, files, fmt, out, plot, workers, resume, overwrite, chunk_size) -> None:
    from gmtnet.prediction.stream_output import ResultWriter

    writer = ResultWriter(out, fmt, predictor.output_names, resume=resume, overwrite=overwrite)
    todo = [f for f in files if str(f) not in writer.done]
    if resume:
        typer.echo(f"resuming {out}: {len(files) - len(todo)} of {len(files)} structures already done", err=True)
    n_ok = n_failed = 0
    try:
        for chunk in predictor.chunks(todo, [str(f) for f in todo], workers=workers,
                                      chunk_size=chunk_size, progress=out is not None and len(todo) > 1):
            writer.write(chunk)  # on disk before the next chunk is predicted
            for result in chunk:
                _report_warnings(result)
                if result.ok:
                    n_ok += 1
                    if plot is not None:
                        _plot(result, plot)
                else:
                    n_failed += 1
                    _report_error(result)
    finally:
        writer.close()
    if out is not None:
        typer.echo(f"wrote {out}: {n_ok} predicted, {n_failed} failed in this run", err=True)
    if todo and n_ok == 0:
        raise typer.Exit(1)
