"""The training loop: Huber loss, AdamW, polynomial decay, best-on-validation checkpoint, resume.

Run directory layout (all written atomically):
    config.json   the TrainConfig
    last.pt       model, optimizer, scheduler, epoch, history (for --resume)
    best.pt       the model with the lowest validation Fnorm so far (a gmtnet model file)
    log.csv, log.json   one row per epoch: train loss, validation metrics, learning rate, seconds
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from gmtnet.data import TensorDataset, load_dataset
from gmtnet.data.records import output_labels
from gmtnet.errors import GmtnetError
from gmtnet.model.io import build_model_from_train_config, load_data_only, save_model, transfer_weights
from gmtnet.tensors import get_tensor_type, part_types
from gmtnet.training.config import EXECUTION_SETTINGS, TrainConfig
from gmtnet.training.distributed import DistributedContext, setup_distributed, use_global_batchnorm
from gmtnet.training.graphs import prepare_graphs
from gmtnet.training.losses import outputs_loss
from gmtnet.training.metrics import tensor_metrics
from gmtnet.training.optim import make_optimizer, polynomial_schedule
from gmtnet.utils.io import atomic_write_bytes, atomic_write_text
from gmtnet.utils.progress import progress_bar

LOG_FIELDS = ("epoch", "train_loss", "val_fnorm", "val_ewt25", "val_ewt10", "val_ewt5", "lr", "seconds")


def label_scale(tensors: np.ndarray) -> float:
    """RMS of the label entries: the unit in which the network and the loss work."""
    return float(np.sqrt(np.mean(np.square(tensors)))) or 1.0


def part_scales(cfg: TrainConfig, records) -> list[float] | None:
    """The part scales of a run's model (``ModelConfig.part_scales``: the RMS of each part's
    entries above its lower bound over the training records with parts), or None when the model
    predicts the tensor whole: a baseline, a task without parts, ``cfg.parts`` False, or (with
    ``cfg.parts`` None) no training record with parts."""
    ttype = get_tensor_type(cfg.task)
    if cfg.model != "gmtnet" or not ttype.parts or cfg.parts is False:
        return None
    with_parts = [r.parts for r in records if r.parts is not None]
    if not with_parts:
        if cfg.parts:
            raise GmtnetError(f"parts: no training record of {cfg.task} ({cfg.source}) has "
                              f"{' and '.join(ttype.parts)} labels")
        return None
    scales = []
    for ptype in part_types(ttype):
        shifted = np.stack([p[ptype.name] for p in with_parts]) - (ptype.lower_bound or 0.0) * np.eye(3)
        scales.append(label_scale(shifted))
    return scales


def excluded_ids(spec: str, source: str = "mp", root=None) -> set[str]:
    """Material ids of "TASK:SPLIT[+SPLIT...]" (e.g. "piezoelectric:val+test")."""
    task, _, splits = spec.partition(":")
    names = [s for s in splits.split("+") if s]
    if not names or any(s not in ("train", "val", "test") for s in names):
        raise GmtnetError(f"exclude {spec!r}: expected TASK:SPLIT[+SPLIT...] with splits train, val, test")
    data = load_dataset(get_tensor_type(task).name, source=source, root=root)
    return {r.material_id for name in names for r in data.split(name)}


def load_split_records(cfg: TrainConfig, progress: bool = False):
    """(train, val) TensorDatasets of the run: ``exclude`` and ``max_label_norm`` screens, then
    ``limit`` and ``val_limit`` applied. ``progress``: a bar while a source is curated."""
    data = load_dataset(cfg.task, source=cfg.source, root=cfg.data_root, path=cfg.data_path, progress=progress)
    train_records, val_records = data.split("train"), data.split("val")
    if not len(train_records) or not len(val_records):
        raise GmtnetError(f"{cfg.task} ({cfg.source}): the data has no train/val split")
    screens = []
    if cfg.exclude:
        excluded = excluded_ids(cfg.exclude, cfg.source, cfg.data_root)
        screens.append(lambda r: r.material_id not in excluded)
    if cfg.max_label_norm is not None:
        screens.append(lambda r: float(np.linalg.norm(r.tensor)) <= cfg.max_label_norm)
    if screens:
        def keep(records):
            return TensorDataset([r for r in records if all(s(r) for s in screens)], data.task, data.source, data.report)

        train_records, val_records = keep(train_records), keep(val_records)
    if cfg.limit:
        train_records = train_records[: cfg.limit]
    if cfg.val_limit:
        val_records = val_records[: cfg.val_limit]
    return train_records, val_records


CHECKPOINT_KEYS = {"train_config", "model", "optimizer", "epoch", "history", "best_val_fnorm", "output_scale"}
#: Written since parts were added; a checkpoint without it holds a model without parts.
PART_SCALES_KEY = "part_scales"


def edge_noise(edge_vec: torch.Tensor, sigma: float, seed: tuple) -> torch.Tensor:
    """(E, 3) Gaussian noise of standard deviation ``sigma`` (Angstrom) for a batch's edge vectors,
    drawn on the CPU from a generator seeded by ``seed`` (run seed, epoch, batch start, rank), so
    that a run, resumed or not, sees the same noise."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))
    noise = torch.randn(edge_vec.shape, generator=generator, dtype=torch.float64) * sigma
    return noise.to(dtype=edge_vec.dtype, device=edge_vec.device)


def read_checkpoint(path: Path) -> dict:
    """A training checkpoint (``last.pt``), loaded with ``weights_only=True``: tensors, numbers,
    strings, lists and dicts only, so a crafted file cannot run code. GmtnetError for a missing,
    damaged or foreign file."""
    if not path.is_file():
        raise GmtnetError(f"{path}: nothing to resume (no checkpoint)")
    state = load_data_only(path, "a readable training checkpoint", "; remove it to start the run over")
    if not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state) or not isinstance(state["train_config"], dict):
        raise GmtnetError(f"{path}: not a gmtnet training checkpoint")
    return state


def merge_resumed_config(saved: TrainConfig, asked: TrainConfig, epochs_done: int) -> TrainConfig:
    """The configuration a resumed run continues with: the saved one, with the execution settings
    (device, threads, compile, orbits), the run folder and the data folder as ``asked``, and
    ``asked.epochs`` (which may differ, not below ``epochs_done``). Any other setting of ``asked``
    that differs from the saved one is refused: a resumed run keeps its configuration."""
    from dataclasses import replace


    free = {*EXECUTION_SETTINGS, "out", "data_root", "epochs"}
    for name, value in asked.to_dict().items():
        if name not in free and value != getattr(saved, name):
            raise GmtnetError(f"{name} {value!r} contradicts the run being resumed ({name} {getattr(saved, name)!r}): "
                              "a resumed run keeps its configuration")
    if asked.epochs < epochs_done:
        raise GmtnetError(f"the run has trained {epochs_done} epochs already; --epochs {asked.epochs} is fewer")
    return replace(saved, **{name: getattr(asked, name) for name in free})


def _checkpoint_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _write_logs(out: Path, history: list[dict]) -> None:
    atomic_write_text(out / "log.json", json.dumps(history, indent=1) + "\n")
    text = io.StringIO()
    extra = [k for k in dict.fromkeys(k for row in history for k in row) if k not in LOG_FIELDS]
    writer = csv.DictWriter(text, fieldnames=[*LOG_FIELDS, *extra])
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k) for k in writer.fieldnames})
    atomic_write_text(out / "log.csv", text.getvalue())


def _epoch_mean_loss(losses: list[torch.Tensor], ctx: DistributedContext) -> float:
    """Mean over the epoch's steps of the global batches' mean losses, from this process's
    scaled shard losses (one all-reduce per epoch, none per step)."""
    total = torch.stack(losses).double().sum()
    if ctx.active:
        torch.distributed.all_reduce(total)
    return float(total) / (ctx.world_size * len(losses))


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, cache_dir=None) -> dict:
    """Train one model; returns {"best": path, "last": path, "history": [...], "best_val_fnorm": x}.

    With ``resume`` the run continues from ``cfg.out/last.pt`` (``merge_resumed_config``: the saved
    configuration, execution settings and ``epochs`` from ``cfg``, any other difference refused)
    and gives the same result as an uninterrupted run on CPU. Without ``resume`` a folder that
    holds a run already is refused, never overwritten.

    Launched by torchrun with several processes, each process trains on its shard of every
    global batch of ``cfg.batch_size`` crystals (see gmtnet.training.distributed); only the first
    process writes files and shows progress.
    """
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise GmtnetError(f"--device {cfg.device}: no CUDA device is available on this machine")
    ctx = setup_distributed(cfg.device)
    # subnormal floats (below 1e-38) slow CPU arithmetic many-fold; flushing them to zero changes
    # nothing measurable and speeds training up about 20% (docs/performance.md)
    flush = torch.set_flush_denormal(True)
    try:
        return _train(cfg, ctx, resume, progress and ctx.is_main, cache_dir)
    finally:
        if flush:
            torch.set_flush_denormal(False)
        ctx.close()


def _train(cfg: TrainConfig, ctx: DistributedContext, resume: bool, progress: bool, cache_dir) -> dict:
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if out.exists() and not out.is_dir():
        raise GmtnetError(f"{out}: exists and is not a folder (--out names the run folder)")
    state = None
    if resume:
        state = read_checkpoint(last_path)
        cfg = merge_resumed_config(TrainConfig(**state["train_config"]), cfg, state["epoch"])
    elif last_path.exists():
        raise GmtnetError(f"{out} holds a run already: add --resume to continue it, or choose another --out")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    train_records, val_records = load_split_records(cfg, progress and ctx.is_main)
    targets = np.stack([r.tensor for r in train_records])
    scale = state["output_scale"] if state else label_scale(targets)
    scales_of_parts = state.get(PART_SCALES_KEY) if state else part_scales(cfg, train_records)
    model = build_model_from_train_config(cfg, output_scale=scale, part_scales=scales_of_parts)
    names = model.output_names
    if cfg.init_from and not state:
        copied, kept = transfer_weights(model, cfg.init_from, cfg.init_member)
        if ctx.is_main and progress:
            print(f"initialised {len(copied)} tensors from {cfg.init_from}; {len(kept)} start fresh", flush=True)
    model = model.to(ctx.device)
    if ctx.is_main:  # the run's folder is written once its data and model exist
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=1) + "\n")
    dtype = next(model.parameters()).dtype
    train_graphs = prepare_graphs(model, train_records, cfg.source, cache_dir, progress, desc="train")
    val_graphs = prepare_graphs(model, val_records, cfg.source, cache_dir, progress, desc="val")
    val_labels, val_known = output_labels(val_records, names)
    val_constraints = [model.constraints(g) for g in val_graphs]
    val_systems = [r.crystal_system for r in val_records]
    train_labels, train_known = output_labels(train_records, names)
    y_all = torch.as_tensor(train_labels / scale, dtype=dtype)  # [N, K, ...]
    known_all = torch.as_tensor(train_known)

    steps_per_epoch = int(np.ceil(len(train_graphs) / cfg.batch_size))
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    history, best_fnorm, start_epoch = [], float("inf"), 0
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, best_fnorm, start_epoch = state["history"], state["best_val_fnorm"], state["epoch"]
    # on resume the schedule continues where it stopped (over the possibly raised epoch count)
    scheduler = polynomial_schedule(optimizer, steps_per_epoch * cfg.epochs, cfg.lr, cfg.lr_end, cfg.lr_power,
                                    done_steps=start_epoch * steps_per_epoch - 1 if state else -1)
    network = model  # what the training steps call: the model, compiled and/or wrapped for DDP
    if cfg.compile:
        model.compile_kernels()
    if ctx.active:
        use_global_batchnorm(model)
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None)
    model.train()
    epochs = range(start_epoch, cfg.epochs)
    bar = progress_bar(epochs, enabled=progress, desc=f"train {cfg.model} {cfg.task}", unit="epoch",
               initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_graphs))
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2 and len(order) > 1:  # BatchNorm needs two crystals
                continue
            mine = ctx.shard(idx)
            batch = model.collate([train_graphs[i] for i in mine], orbits=cfg.orbits)
            if cfg.edge_noise:
                batch.edge_vec = batch.edge_vec + edge_noise(batch.edge_vec, cfg.edge_noise, (cfg.seed, epoch, start, ctx.rank))
            pred = (network(batch, all_outputs=True) if len(names) > 1 else network(batch)[:, None]) / scale
            # the global batch's loss restricted to this shard, times W (DDP averages the W gradients)
            loss = outputs_loss(pred, y_all[mine].to(pred.device), known_all[mine].to(pred.device), cfg.loss,
                                len(idx), cfg.huber_delta, cfg.part_weight, cfg.loss_floor / scale) * ctx.world_size
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
        val_preds = model.predict_graph_outputs(val_graphs, snap=False, orbits=False)
        val = tensor_metrics(val_preds[:, 0], val_labels[:, 0], val_constraints, val_systems, derived=False)["overall"]
        row = {"epoch": epoch + 1, "train_loss": _epoch_mean_loss(losses, ctx), "val_fnorm": val.fnorm,
               "val_ewt25": val.ewt25, "val_ewt10": val.ewt10, "val_ewt5": val.ewt5,
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        for k, name in enumerate(names[1:], start=1):  # each part's validation Fnorm, where known
            rows = val_known[:, k]
            if rows.any():
                row[f"val_fnorm_{name}"] = float(np.linalg.norm((val_preds[rows, k] - val_labels[rows, k])
                                                                .reshape(int(rows.sum()), -1), axis=1).mean())
        history.append(row)
        improved = val.fnorm < best_fnorm
        best_fnorm = min(best_fnorm, val.fnorm)
        if not ctx.is_main:
            continue
        if improved:
            save_model(model, best_path, train_config=cfg.to_dict(), epoch=epoch + 1, val_fnorm=val.fnorm)
        atomic_write_bytes(last_path, _checkpoint_bytes({
            "train_config": cfg.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1, "history": history, "best_val_fnorm": best_fnorm, "output_scale": scale,
            PART_SCALES_KEY: scales_of_parts}))
        _write_logs(out, history)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_fnorm=f"{val.fnorm:.3f}", best=f"{best_fnorm:.3f}")
    return {"best": best_path, "last": last_path, "history": history, "best_val_fnorm": best_fnorm}
