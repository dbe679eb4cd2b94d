"""``gmtnet train`` and ``gmtnet evaluate``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

import typer


def train(
    task: Optional[str] = typer.Option(None, help="dielectric, piezoelectric or elastic (with --resume: the run's)."),
    model: Optional[str] = typer.Option(None, help="gmtnet (default), megnet or etgnn."),
    preset: Optional[str] = typer.Option(None, help="GMTNet configuration: fast (default; l <= 2 between layers, 8-channel "
                                          "edge products) or paper (appendix A.4 as printed)."),
    group_average: Optional[bool] = typer.Option(None, "--group-average", is_flag=True,
                                                 help="Baselines: average over the point group (-GA)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default 200, the paper's; with --resume: the run's, or more)."),
    batch_size: Optional[int] = typer.Option(None, help="Crystals per batch, at least 2 (default 64)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay",
                                                help="AdamW weight decay (default 1e-5, the paper's; none on biases and norms)."),
    lr: Optional[float] = typer.Option(None, help="Initial learning rate (default 1e-3; polynomial decay to 1e-5)."),
    loss: Optional[str] = typer.Option(None, help="huber (default, the paper's, per entry), fnorm (per-crystal "
                                       "Frobenius norm of the error), relative (that over the label's norm plus "
                                       "--loss-floor) or hybrid (fnorm + relative)."),
    loss_floor: Optional[float] = typer.Option(None, "--loss-floor", help="Floor of the relative loss, label units "
                                               "(default 0.05)."),
    huber_delta: Optional[float] = typer.Option(None, help="Huber threshold in units of the label scale (default 1)."),
    device: Optional[str] = typer.Option(None, help="cpu (default) or cuda."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/<model>-<task>)."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N training crystals (and N/8 validation)."),
    seed: Optional[int] = typer.Option(None, help="Seed of weights and batch order (default 0)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default 0: torch's default)."),
    source: Optional[str] = typer.Option(None, help="Data source: mp (default, matminer benchmark), mp2026 (elastic and "
                                                   "piezoelectric), mp-dfpt (dielectric with electronic and ionic parts), "
                                                   "jarvis or file; several joined by + train on their union "
                                                   "(e.g. mp+mp-dfpt)."),
    data_path: Optional[Path] = typer.Option(None, "--path", help="The data file (JSON or CSV) of --source file."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT (its configuration; only --epochs, "
                                "--device, --threads, --compile and --orbits/--all-atoms may change)."),
    compile_kernels: Optional[bool] = typer.Option(None, "--compile", is_flag=True,
                                                   help="torch.compile the hot kernels (one-off cost, faster steps)."),
    orbits: Optional[bool] = typer.Option(None, "--orbits/--all-atoms",
                                          help="GMTNet: training batches at one atom per orbit of equivalent atoms "
                                          "(default: the same steps for symmetrized structures, 2-4x less work; "
                                          "batch norm counts each orbit's atoms) or at every atom."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from this saved model's matching weights "
                                             "(transfer learning, e.g. a dielectric run's best.pt)."),
    init_member: Optional[int] = typer.Option(None, "--init-member", help="With an ensemble file as --init-from: the "
                                              "member to start from (1 is the first)."),
    parts: Optional[bool] = typer.Option(None, "--parts/--no-parts", help="Dielectric: predict the electronic and ionic "
                                         "parts, each bounded, and supervise each where known (default: when the "
                                         "training data has them) or the total only."),
    part_weight: Optional[float] = typer.Option(None, "--part-weight", help="Weight of each part's loss against the "
                                                "total's (default 1)."),
    exclude: Optional[str] = typer.Option(None, help="TASK:SPLIT[+SPLIT]: leave those crystals out "
                                                    "(e.g. piezoelectric:val+test when pre-training)."),
    max_label_norm: Optional[float] = typer.Option(None, "--max-label-norm", help="Leave out train and validation crystals whose label "
                                                   "Frobenius norm exceeds this (label units); the test split is never screened."),
    physical_bounds: Optional[bool] = typer.Option(None, "--physical-bounds/--no-physical-bounds", help="GMTNet: predictions obey "
                                                   "the stability bound (permittivity eigenvalues > 1, positive-definite stiffness; "
                                                   "default for dielectric and elastic); off for tensors of unstable crystals."),
    edge_noise: Optional[float] = typer.Option(None, "--edge-noise", help="Gaussian noise (Angstrom) added to every "
                                               "edge vector of every training batch, a smoothness regulariser (default 0)."),
    graph: Optional[str] = typer.Option(None, help="GMTNet: smooth (default: messages weighted by a smooth envelope, "
                                        "output continuous in the positions) or knn (the paper's k-NN graph)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A JSON or TOML file of training settings (e.g. another "
                                          "run's config.json); options on the command line override it."),
) -> None:
    """Train a model on the fixed train split, keeping the best-on-validation checkpoint.

    --config FILE takes the settings from a file (the names of TrainConfig, e.g. a run's
    config.json, so that `gmtnet train --config runs/a/config.json --seed 2 --out runs/b` repeats
    run a with another seed); options given on the command line win.

    --resume continues the run in OUT with the configuration saved there: options left out take
    the run's values, and an option that contradicts the run is refused.

    Several processes (CPUs or GPUs): torchrun --nproc-per-node N -m gmtnet train ... (each
    takes a shard of every global batch of BATCH_SIZE crystals)."""
    from gmtnet.errors import GmtnetError
    from gmtnet.tensors import get_tensor_type
    from gmtnet.training import TrainConfig
    from gmtnet.training import train as run
    from gmtnet.training.config import read_config_file
    from gmtnet.training.trainer import merge_resumed_config, read_checkpoint

    given = {name: value for name, value in dict(
        task=get_tensor_type(task).name if task is not None else None, model=model, preset=preset,
        group_average=group_average, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        loss=loss, huber_delta=huber_delta, loss_floor=loss_floor, device=device, limit=limit,
        val_limit=max(1, limit // 8) if limit and limit > 0 else limit, seed=seed, threads=threads, source=source,
        data_path=str(data_path) if data_path else None,
        compile=compile_kernels, orbits=orbits, init_from=str(init_from) if init_from else None,
        init_member=init_member, parts=parts, part_weight=part_weight, exclude=exclude,
        max_label_norm=max_label_norm, edge_noise=edge_noise,
        model_overrides={name: value for name, value in (("physical_bounds", physical_bounds), ("graph", graph))
                         if value is not None} or None).items()
        if value is not None}
    if config is not None:
        settings = read_config_file(config)
        overrides = {**settings.get("model_overrides", {}), **given.get("model_overrides", {})}
        given = {**settings, **given, **({"model_overrides": overrides} if overrides else {})}
        if out is None and settings.get("out"):
            out = Path(settings["out"])
        given.pop("out", None)
    if out is None:
        if "task" not in given:
            raise GmtnetError("--task is required" + (" (or --out, the run folder to resume)" if resume else ""))
        out = Path("runs") / f"{given.get('model', 'gmtnet')}{'-ga' if given.get('group_average') else ''}-{given['task']}"
    if resume:
        state = read_checkpoint(out / "last.pt")
        saved = TrainConfig(**state["train_config"])
        cfg = merge_resumed_config(saved, TrainConfig(**{**saved.to_dict(), **given, "out": str(out)}), state["epoch"])
    else:
        if "task" not in given:
            raise GmtnetError("--task is required")
        cfg = TrainConfig(**given, out=str(out))
    result = run(cfg, resume=resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, the first process reports
        typer.echo(f"best validation Fnorm {result['best_val_fnorm']:.4f}; model: {result['best']}")


def evaluate(
    checkpoint: Path = typer.Argument(..., help="A model file (e.g. runs/gmtnet-dielectric/best.pt)."),
    split: str = typer.Option("test", help="train, val or test (mp-dfpt also: screened, its high-k crystals)."),
    source: str = typer.Option("mp", help="Data source: mp (matminer benchmark), mp2026 (elastic and piezoelectric), "
                               "mp-dfpt (dielectric, electronic and ionic parts), jarvis or file; several joined by +."),
    path: Path = typer.Option(None, help="Data file for source jarvis/file."),
    rotate: float = typer.Option(0.0, help="Rotate every crystal and label by this angle (degrees) first."),
    axis: str = typer.Option("z", help="Rotation axis for --rotate: x, y or z."),
    reflect: bool = typer.Option(False, "--reflect", help="Also apply the inversion (an improper rotation)."),
    out: Path = typer.Option(None, help="Write OUT.json and OUT.md (atomically)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the table."),
    compare: str = typer.Option(None, help="Another model file, or 'zero' / 'train-mean' (trivial predictors): "
                                "the mean Fnorm difference on the same crystals with its paired bootstrap interval."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Open a --source jarvis pickle "
                                      "(a pickle can run code when read: only a file you trust)."),
) -> None:
    """The four metrics (zero and equality success, Fnorm with a bootstrap 95% interval, EwT
    25/10/5) overall and per crystal system, and for elastic tensors the bulk and shear modulus
    MAE and the predictions that are not positive definite; optionally against another model or
    a trivial predictor on the same crystals.

    A piezoelectric model also gets screening metrics (gmtnet.training.screening: ROC AUC and
    average precision for max|e_ij| > 0.5 C/m^2, Spearman, size and direction errors, bulk and
    tail against zero, and on mp2026 the false flags on the elastic split's centrosymmetric
    crystals). A dielectric model with parts is also scored on its electronic and ionic tensors (on the
    crystals whose labels have them); on the mp-dfpt test split it is also asked where it ranks
    the benchmark's screened high-k crystals."""
    from gmtnet.data import load_dataset
    from gmtnet.model import load_model
    from gmtnet.errors import GmtnetError
    import numpy as np

    from gmtnet.tensors import get_tensor_type, rotate_tensor
    from gmtnet.training.evaluate import (axis_rotation, compare_with, error_bound_table, evaluate_model,
                                         high_k_screen, high_k_text, metrics_json, metrics_table)
    from gmtnet.training.screening import false_flags, screening_report, screening_table
    from gmtnet.utils.io import atomic_write_text, check_output_file

    if out is not None:  # found before the evaluation, not after
        for suffix in (".json", ".md"):
            check_output_file(out.with_suffix(suffix), "--out")
    if not math.isfinite(rotate):
        raise GmtnetError(f"--rotate must be a finite angle, got {rotate}")
    model = load_model(checkpoint)
    records = load_dataset(model.config.task, source=source, split=split, path=path, trust_pickle=trust_pickle)
    rotation = axis_rotation(axis, rotate, reflect) if (rotate or reflect) else None
    result = evaluate_model(model, records, rotation=rotation)
    summary = {"checkpoint": str(checkpoint), "task": model.config.task, "source": source, "split": split, "n": len(records),
               "rotation_deg": rotate, "axis": axis, "reflect": reflect, **metrics_json(result)}
    table = (f"# {checkpoint}: {model.config.task}, {split} split of {source} ({len(records)} crystals)"
             f"{f', rotated {rotate:g} deg about {axis}' if rotate else ''}{', inverted' if reflect else ''}\n\n"
             + metrics_table(result, model.ttype.unit))
    if compare is not None:
        comparison = compare_with(compare, model, records, rotation, result["errors"], source, path, trust_pickle)
        summary["comparison"] = comparison
        table += (f"\nAgainst {compare} on the same {comparison['n']} crystals: Fnorm difference (this - other) "
                  f"{comparison['difference']:+.3f}{' ' + model.ttype.unit if model.ttype.unit else ''}, "
                  f"95% interval {comparison['ci95'][0]:+.3f} to "
                  f"{comparison['ci95'][1]:+.3f} (paired bootstrap): {comparison['verdict']}.\n")
    if "error_bound" in result:
        summary["error_bound"] = result["error_bound"]
        table += "\n" + error_bound_table(result["error_bound"], model.ttype.unit)
    if result["parts"]:
        summary["parts"] = {}
    for name, part in result["parts"].items():
        summary["parts"][name] = {"n": part["n"], **metrics_json(part)}
        unit = get_tensor_type(name).unit
        table += f"\n## {name} ({part['n']} of the {len(records)} crystals have this label)\n\n" + metrics_table(part, unit)
        if "error_bound" in part:
            summary["parts"][name]["error_bound"] = part["error_bound"]
            table += "\n" + error_bound_table(part["error_bound"], unit)
    if model.ttype.name == "piezoelectric":
        labels = np.stack([r.tensor if rotation is None else rotate_tensor(r.tensor, rotation) for r in records])
        summary["screening"] = screening_report(result["predictions"], labels, [r.crystal_system for r in records])
        table += "\n" + screening_table(summary["screening"])
        if source == "mp2026" and rotation is None:  # centrosymmetric crystals of the elastic set, same split
            others = load_dataset("elastic", source="mp2026", split=split)
            summary["false_flags"] = false_flags(model, [r.structure for r in others])
            f = summary["false_flags"]
            table += (f"\nFalse flags: {f['false_flags']} of the {f['n_centrosymmetric']} centrosymmetric crystals of "
                      f"the mp2026 elastic {split} split predicted with max|e_ij| > {f['threshold']:g} C/m^2.\n")
    if source == "mp-dfpt" and split == "test" and model.ttype.name == "dielectric" and rotation is None:
        screened = load_dataset(model.config.task, source=source, split="screened")
        summary["high_k_screen"] = high_k_screen(model, records, result["predictions"], screened)
        table += "\n" + high_k_text(summary["high_k_screen"])
    if out is not None:
        atomic_write_text(out.with_suffix(".json"), json.dumps(summary, indent=1) + "\n")
        atomic_write_text(out.with_suffix(".md"), table)
    typer.echo(json.dumps(summary, indent=1) if as_json else table)


def reproduce(
    table: str = typer.Argument(..., help="table2-4 (or table2/3/4), table5, table6, table7, table11, table12, all (these), "
                               "learning-curve-TASK, transfer-piezoelectric, or an experiment FILE.toml of your own "
                               "(the format: gmtnet.training.experiment)."),
    quick: bool = typer.Option(False, "--quick", help="2 epochs on 64 crystals per model: checks the pipeline."),
    epochs: int = typer.Option(200, help="Epochs per model in full mode."),
    preset: str = typer.Option("fast", help="GMTNet configuration (paper or fast)."),
    source: str = typer.Option("mp", help="Benchmark: mp (matminer) or mp2026 (elastic and piezoelectric runs of the table)."),
    runs: Path = typer.Option(Path("runs"), help="Where run directories live."),
    reports: Path = typer.Option(Path("reports"), help="Where the markdown tables go."),
    threads: int = typer.Option(0, help="CPU threads for torch (0: torch's default)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    compile_kernels: bool = typer.Option(False, "--compile", help="torch.compile the hot kernels of new runs."),
) -> None:
    """Train (or reuse) the models a paper table (or your experiment file) needs and write the
    table to REPORTS/."""
    import sys

    from gmtnet.training.reproduce import TABLES
    from gmtnet.training.reproduce import reproduce as run

    tables = [t for t in TABLES if not t.startswith("learning-curve")] if table == "all" else [table]
    for name in tables:
        path = run(name, quick=quick, epochs=epochs, preset=preset, source=source, runs_root=runs, reports=reports,
                   threads=threads, device=device, compile_kernels=compile_kernels,
                   command="gmtnet " + " ".join(sys.argv[1:]))
        typer.echo(path.read_text())
