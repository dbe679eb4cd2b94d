"""``gmtnet model ...``: inspect the network."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Inspect GMTNet models and combine them into ensembles.", no_args_is_help=True)


@app.command()
def info(
    task: str = typer.Argument(..., help="dielectric, piezoelectric or elastic"),
    preset: str = typer.Option("paper", help="paper (appendix A.4) or fast (the shipped models' configuration)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Parameter count per block and the irreps of GMTNet for TASK."""
    from gmtnet.model import build_model

    model = build_model(task, preset=preset)
    blocks = {
        "embeddings": sum(p.numel() for m in (model.atom_embedding, model.edge_embedding) for p in m.parameters()),
        "invariant layers": sum(p.numel() for p in model.invariant_layers.parameters()),
        "equivariant layers": sum(p.numel() for p in model.equivariant_layers.parameters()),
        "tensor head" + ("s" if len(model.heads) > 1 else ""): sum(p.numel() for h in model.heads for p in h.parameters()),
    }
    summary = {"task": model.ttype.name, "parameters": model.n_parameters(), "blocks": blocks,
               "lmax": model.config.resolved_lmax, "hidden_irreps": str(model.irreps_hidden),
               "tensor_irreps": str(model.ttype.irreps), "config": model.config.to_dict()}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"GMTNet for {summary['task']}: {summary['parameters']:,} trainable parameters")
    for name, n in blocks.items():
        typer.echo(f"  {name:<20} {n:>9,}")
    typer.echo(f"  lmax {summary['lmax']}; hidden irreps {summary['hidden_irreps']}")
    typer.echo(f"  output tensor irreps {summary['tensor_irreps']}")
    c = model.config
    graph = (f"smooth (envelope band {c.envelope_band:g} r, soft-radius width {c.radius_width:g} A)"
             if c.graph == "smooth" else "k-NN (the paper's)")
    typer.echo(f"  graph {graph}, k = {c.k}; structures symmetrized first: {'yes' if c.refine_structure else 'no'}")


@app.command()
def ensemble(
    out: Path = typer.Argument(..., help="The ensemble model file to write."),
    models: list[Path] = typer.Argument(..., help="Two or more trained model files (best.pt) of one task."),
) -> None:
    """Combine trained models of one task into one ensemble file whose prediction is their mean
    (still exactly symmetric and equivariant); use it with evaluate and predict --model."""
    from gmtnet.model.io import load_ensemble, save_model
    from gmtnet.utils.io import check_output_file

    check_output_file(out, "OUT")
    model = load_ensemble(models)
    save_model(model, out)
    typer.echo(f"{out}: ensemble of {len(model.members)} {model.ttype.name} models, "
               f"{model.n_parameters():,} parameters")


@app.command()
def calibrate(
    model_file: Path = typer.Argument(..., help="A trained model or ensemble file."),
    out: Path = typer.Option(..., help="The calibrated model file to write (may be MODEL_FILE itself)."),
    source: str = typer.Option("mp", help="Data source of the calibration crystals: mp, mp2026, mp-dfpt, jarvis or "
                               "file; several joined by + (e.g. mp+mp-dfpt)."),
    split: str = typer.Option("val", help="Split to calibrate on (one the model was not trained on)."),
    path: Path = typer.Option(None, help="Data file for source jarvis/file."),
    coverage: float = typer.Option(0.9, help="Fraction of crystals the bound should hold for, in (0, 1)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Open a --source jarvis pickle "
                                      "(a pickle can run code when read: only a file you trust)."),
) -> None:
    """Give a model a per-crystal error bound: an upper bound on the Frobenius norm of each
    prediction's error, calibrated on SPLIT so that it holds for COVERAGE of crystals like
    those (split conformal prediction on the ensemble members' spread; a single model gets one
    bound for all crystals). gmtnet predict and evaluate then report it."""
    from gmtnet.data import load_dataset
    from gmtnet.errors import GmtnetError
    from gmtnet.model.io import load_model, read_model_file, save_model
    from gmtnet.training.calibration import attach_error_bounds, calibrate_model
    from gmtnet.utils.io import check_output_file

    if not 0 < coverage < 1:
        raise GmtnetError(f"--coverage must lie in (0, 1), got {coverage}")
    check_output_file(out, "--out")
    if out.exists() and out.resolve() != model_file.resolve():
        try:  # replace only a model file, never another file the user keeps there
            read_model_file(out)
        except GmtnetError:
            raise GmtnetError(f"--out {out}: exists and is not a gmtnet model file; not replaced") from None
    model = load_model(model_file)
    records = load_dataset(model.config.task, source=source, split=split, path=path, trust_pickle=trust_pickle)
    bounds = calibrate_model(model, records, coverage, calibration=f"{source} {split}")
    attach_error_bounds(model, bounds)
    save_model(model, out, **model.metadata)
    for name, bound in bounds.items():
        unit = f" {model.ttype.unit}" if model.ttype.unit else ""
        what = "error bound" if name == model.ttype.name else f"{name} error bound"
        typer.echo(f"{out}: {what} = {bound.scale:.4g} x (spread + {bound.offset:.4g}{unit}), "
                   f"{100 * coverage:g}% target, {100 * bound.calibration_coverage:.1f}% of the "
                   f"{bound.n_calibration} {source} {split} crystals within it")
