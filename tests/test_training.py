"""Training, evaluation metrics, baselines and the reproduce command (offline, tiny models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from gmtnet.cli.app import main
from gmtnet.model import build_model, load_model
from gmtnet.model.baselines import ETGNN, edge_tensor_basis, pairing_patterns
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import DIELECTRIC, ELASTIC, PIEZOELECTRIC, rotate_tensor
from gmtnet.tensors.transform import random_orthogonal
from gmtnet.training import TrainConfig, tensor_metrics, train
from gmtnet.training.metrics import bootstrap_interval
from gmtnet.training.evaluate import rotate_structure
from gmtnet.training.optim import make_optimizer, polynomial_schedule

TINY_GMTNET = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)
TINY_BASELINE = dict(hidden=16, rbf_bins=16)


# ---- metrics ---------------------------------------------------------------------------------
def test_metrics_follow_their_definitions(crystals):
    c = SymmetryConstraints.from_structure(crystals["rutile_TiO2"], DIELECTRIC)  # eps11 = eps22, off-diagonal 0
    label = np.diag([2.0, 2.0, 4.0])
    exact = label.copy()
    off_zero = label + np.eye(3)[0][:, None] * np.eye(3)[1][None, :] * 2e-5  # eps12 = 2e-5 > 1e-5
    off_eq = label + np.diag([2e-4, 0, 0])  # eps11 - eps22 = 2e-4 > 1e-4
    far = label * 1.2  # 20% relative error
    preds = np.stack([exact, off_zero, off_eq, far])
    m = tensor_metrics(preds, np.stack([label] * 4), [c] * 4, ["tetragonal"] * 4)
    o = m["overall"]
    assert o.zero_success == pytest.approx(3 / 4) and o.n_with_zeros == 4
    assert o.equality_success == pytest.approx(3 / 4) and o.n_with_equalities == 4
    fro = np.linalg.norm(label)
    assert o.fnorm == pytest.approx((0 + 2e-5 + 2e-4 + 0.2 * fro) / 4)
    assert (o.ewt25, o.ewt10, o.ewt5) == (1.0, 0.75, 0.75)
    assert set(m["by_crystal_system"]) == {"tetragonal"}


def test_elastic_metrics_report_moduli_errors_and_unstable_predictions(crystals):
    from pymatgen.analysis.elasticity import ElasticTensor

    from gmtnet.tensors import from_voigt

    def cubic(c11, c12, c44):
        v = np.zeros((6, 6))
        v[:3, :3] = c12
        v[np.arange(3), np.arange(3)] = c11
        v[np.arange(3, 6), np.arange(3, 6)] = c44
        return from_voigt(v, ELASTIC)

    c = SymmetryConstraints.from_structure(crystals["rocksalt_NaCl"], ELASTIC)
    label = cubic(250.0, 100.0, 80.0)
    stable, unstable = cubic(270.0, 90.0, 70.0), cubic(100.0, 150.0, 40.0)  # C11 < C12: not positive definite
    m = tensor_metrics(np.stack([stable, unstable]), np.stack([label, label]), [c, c], ["cubic"] * 2)
    moduli = {name: np.array([getattr(ElasticTensor(t), name) for t in (stable, unstable)]) for name in ("k_vrh", "g_vrh")}
    o = m["overall"]
    assert o.k_vrh_mae == pytest.approx(np.abs(moduli["k_vrh"] - ElasticTensor(label).k_vrh).mean(), rel=1e-12)
    assert o.g_vrh_mae == pytest.approx(np.abs(moduli["g_vrh"] - ElasticTensor(label).g_vrh).mean(), rel=1e-12)
    assert (o.n_moduli, o.n_out_of_bound, o.out_of_bound) == (2, 1, 0.5)
    assert m["by_crystal_system"]["cubic"].n_out_of_bound == 1
    diel = tensor_metrics(2 * np.eye(3)[None], 2 * np.eye(3)[None], [SymmetryConstraints.from_structure(
        crystals["rocksalt_NaCl"], DIELECTRIC)], ["cubic"])["overall"]
    assert diel.k_vrh_mae is None and diel.n_out_of_bound == 0
    below = tensor_metrics(np.diag([0.5, 2.0, 2.0])[None], np.eye(3)[None], [SymmetryConstraints.from_structure(
        crystals["triclinic_1"], DIELECTRIC)], ["triclinic"])["overall"]
    assert below.n_out_of_bound == 1  # an eigenvalue below 1: no stable crystal's permittivity
    piezo = tensor_metrics(np.zeros((1, 3, 3, 3)), np.ones((1, 3, 3, 3)), [SymmetryConstraints.from_structure(
        crystals["triclinic_1"], PIEZOELECTRIC)], ["triclinic"])["overall"]
    assert piezo.n_out_of_bound is None


def test_triclinic_crystals_do_not_count_towards_success_rates(crystals):
    c = SymmetryConstraints.from_structure(crystals["triclinic_1"], DIELECTRIC)
    m = tensor_metrics(np.eye(3)[None], np.eye(3)[None], [c], ["triclinic"])["overall"]
    assert m.zero_success is None and m.n_with_zeros == 0 and m.fnorm == 0.0


def test_bootstrap_interval_of_the_mean():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 2.0, size=400)
    low, high = bootstrap_interval(values)
    # normal theory: mean +- 1.96 sigma / sqrt(n); the percentile bootstrap agrees to a few percent
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert low < values.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert bootstrap_interval(values) == (low, high)  # fixed seed: the same interval every time
    inner = bootstrap_interval(values, level=0.5)
    assert low < inner[0] < inner[1] < high
    assert bootstrap_interval(np.full(7, 2.5)) == (2.5, 2.5)
    assert all(np.isnan(bootstrap_interval(np.array([]))))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1e3), min_size=1, max_size=50))
def test_bootstrap_interval_lies_within_the_sample(values):
    low, high = bootstrap_interval(np.array(values), resamples=200)
    assert min(values) - 1e-9 <= low <= high <= max(values) + 1e-9


def test_metrics_report_the_fnorm_interval(crystals):
    c = SymmetryConstraints.from_structure(crystals["rutile_TiO2"], DIELECTRIC)
    label = np.diag([2.0, 2.0, 4.0])
    preds = np.stack([label, label * 1.1, label * 1.5, label])
    o = tensor_metrics(preds, np.stack([label] * 4), [c] * 4, ["tetragonal"] * 4)["overall"]
    errors = np.linalg.norm((preds - label).reshape(4, -1), axis=1)
    assert o.fnorm_ci95 == bootstrap_interval(errors)
    assert o.fnorm_ci95[0] <= o.fnorm <= o.fnorm_ci95[1]


# ---- optimisation ----------------------------------------------------------------------------
def test_no_weight_decay_on_biases_and_batchnorm():
    model = build_model("dielectric", **TINY_GMTNET)
    decay, no_decay = make_optimizer(model, 1e-3, 1e-5).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") or ".bn_" in names[id(p)] for p in no_decay["params"])
    assert not any(names[id(p)].endswith("bias") for p in decay["params"])
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_polynomial_schedule_values():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = polynomial_schedule(opt, total_steps=10, lr=1e-3, lr_end=1e-5, power=2.0)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [(1e-3 - 1e-5) * (1 - min(t, 10) / 10) ** 2 + 1e-5 for t in range(12)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


# ---- training loop ---------------------------------------------------------------------------
def _cfg(tmp_path, mp_root, out="run", **kw) -> TrainConfig:
    base = dict(task="dielectric", epochs=2, batch_size=8, limit=16, data_root=str(mp_root), out=str(tmp_path / out),
                model_overrides=dict(TINY_GMTNET), threads=1)
    return TrainConfig(**{**base, **kw})


def test_training_writes_logs_and_a_loadable_best_model(tmp_path, mp_root):
    result = train(_cfg(tmp_path, mp_root), progress=False, cache_dir=tmp_path / "cache")
    out = tmp_path / "run"
    rows = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (out / "log.csv").read_text().splitlines()[0].startswith("epoch,train_loss,val_fnorm")
    assert result["best_val_fnorm"] == min(r["val_fnorm"] for r in rows)
    model = load_model(out / "best.pt")
    assert model.config.output_scale > 1.0  # RMS of dielectric entries
    assert list((tmp_path / "cache").glob("*.npz"))  # preprocessing cached


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, mp_root):
    cache = tmp_path / "cache"
    train(_cfg(tmp_path, mp_root, "full", epochs=3), progress=False, cache_dir=cache)
    # simulate an interruption after epoch 1: keep that epoch's checkpoint, then resume
    cfg = _cfg(tmp_path, mp_root, "cut", epochs=3)
    import gmtnet.training.trainer as trainer

    original = trainer._write_logs
    calls = {"n": 0}

    def stop_after_first(out, history):
        original(out, history)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    trainer._write_logs = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, progress=False, cache_dir=cache)
    finally:
        trainer._write_logs = original
    assert len(json.loads((tmp_path / "cut" / "log.json").read_text())) == 1
    train(cfg, resume=True, progress=False, cache_dir=cache)
    full = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert cut["epoch"] == 3
    for k in full["model"]:
        assert torch.equal(full["model"][k], cut["model"][k]), k
    assert [r["val_fnorm"] for r in cut["history"]] == [r["val_fnorm"] for r in full["history"]]


def test_training_at_one_atom_per_orbit_takes_the_same_steps(tmp_path, mp_root):
    """train --orbits: the fixture crystals (MP structures, symmetric to ~1e-5 A or better) give the
    same validation curve and weights as atom-by-atom training, to the inputs' asymmetry."""
    cache = tmp_path / "cache"
    f64 = dict(TINY_GMTNET, dtype="float64")
    runs = {o: train(_cfg(tmp_path, mp_root, f"orbits-{o}", model_overrides=f64, orbits=o), progress=False,
                     cache_dir=cache) for o in (False, True)}
    assert json.loads((tmp_path / "orbits-True" / "config.json").read_text())["orbits"] is True
    curves = [[r["val_fnorm"] for r in json.loads((tmp_path / f"orbits-{o}" / "log.json").read_text())]
              for o in (False, True)]
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)
    a = torch.load(tmp_path / "orbits-False" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "orbits-True" / "last.pt", weights_only=False)["model"]
    for k in a:
        if a[k].is_floating_point() and a[k].numel():
            assert (a[k] - b[k]).abs().max() <= 1e-5 * max(a[k].abs().max().item(), 1e-3), k
    model = load_model(runs[True]["best"])
    from gmtnet.data import load_dataset

    graphs = [model.graph(r.structure) for r in load_dataset("dielectric", split="train", root=mp_root)[:16]]
    batch = model.prepared_batch(graphs, orbits=True)
    assert len(batch.orbits.rep_nodes) < sum(g.n_atoms for g in graphs)  # the orbit batches were smaller


def test_edge_noise_is_seeded_gaussian_and_changes_only_training(tmp_path, mp_root):
    from gmtnet.training.trainer import edge_noise

    vec = torch.zeros(20000, 3, dtype=torch.float32)
    a, b = edge_noise(vec, 0.02, (1, 0, 0, 0)), edge_noise(vec, 0.02, (1, 0, 0, 0))
    assert torch.equal(a, b) and not torch.equal(a, edge_noise(vec, 0.02, (1, 0, 64, 0)))
    assert a.dtype == torch.float32 and abs(a.double().std().item() - 0.02) < 5e-4 and abs(a.double().mean().item()) < 5e-4
    cache = tmp_path / "cache"
    runs = {sigma: [train(_cfg(tmp_path, mp_root, f"noise-{sigma}-{k}", epochs=1, edge_noise=sigma), progress=False,
                          cache_dir=cache) for k in range(2)] for sigma in (0.0, 0.05)}
    weights = {sigma: [torch.load(tmp_path / f"noise-{sigma}-{k}" / "last.pt", weights_only=True)["model"]
                       for k in range(2)] for sigma in runs}
    for sigma, (first, second) in weights.items():  # reproducible
        assert all(torch.equal(first[k], second[k]) for k in first), sigma
    assert any(not torch.equal(weights[0.0][0][k], weights[0.05][0][k]) for k in weights[0.0][0])
    with pytest.raises(ValueError, match="edge_noise must be"):
        _cfg(tmp_path, mp_root, edge_noise=-0.1)
    with pytest.raises(ValueError, match="GMTNet setting"):
        _cfg(tmp_path, mp_root, model="megnet", edge_noise=0.1, model_overrides=dict(TINY_BASELINE))


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, mp_root):
    from gmtnet.errors import GmtnetError

    with pytest.raises(GmtnetError, match="nothing to resume"):
        train(_cfg(tmp_path, mp_root), resume=True, progress=False)


@pytest.mark.parametrize("arch", ["megnet", "etgnn"])
def test_baselines_train_through_the_same_loop(tmp_path, mp_root, arch):
    cfg = _cfg(tmp_path, mp_root, task="piezoelectric", model=arch, group_average=True, epochs=1,
               model_overrides=dict(TINY_BASELINE))
    train(cfg, progress=False, cache_dir=tmp_path / "cache")
    model = load_model(tmp_path / "run" / "best.pt")
    assert type(model).__name__ == {"megnet": "MEGNet", "etgnn": "ETGNN"}[arch] and model.config.group_average


# ---- baselines -------------------------------------------------------------------------------
@pytest.mark.parametrize("order,count", [(2, 2), (3, 4), (4, 10)])
def test_pairing_patterns(order, count):
    assert len(pairing_patterns(order)) == count


@pytest.mark.parametrize("order", [2, 3, 4])
def test_edge_tensor_basis_is_o3_equivariant(order, rng):
    u = torch.as_tensor(rng.normal(size=(5, 3)))
    u = u / u.norm(dim=1, keepdim=True)
    r = random_orthogonal(rng, improper=True)
    basis = edge_tensor_basis(u, order).numpy().reshape(5, -1, *(3,) * order)
    rotated = edge_tensor_basis(u @ torch.as_tensor(r).T, order).numpy().reshape(basis.shape)
    for e in range(5):
        for p in range(basis.shape[1]):
            np.testing.assert_allclose(rotated[e, p], rotate_tensor(basis[e, p], r), atol=1e-12)


@pytest.mark.parametrize("ttype", [DIELECTRIC, PIEZOELECTRIC, ELASTIC], ids=lambda t: t.name)
def test_etgnn_is_equivariant_and_megnet_is_not(crystals, ttype, rng):
    s = crystals["monoclinic_2"]
    r = random_orthogonal(rng, improper=True)
    for arch, equivariant in (("etgnn", True), ("megnet", False)):
        model = build_model(ttype.name, arch, dtype="float64", **TINY_BASELINE).eval()
        t, t_rot = model.predict([s])[0], model.predict([rotate_structure(s, r)])[0]
        err = np.abs(t_rot - rotate_tensor(t, r)).max() / np.abs(t).max()
        assert (err < 1e-9) == equivariant, (arch, err)


def test_group_averaged_megnet_obeys_the_point_group(crystals):
    for name in ("wurtzite_ZnO", "alpha_quartz", "rocksalt_NaCl"):
        s = crystals[name]
        model = build_model("elastic", "megnet", group_average=True, dtype="float64", **TINY_BASELINE).eval()
        t = model.predict([s])[0]
        c = SymmetryConstraints.from_structure(s, ELASTIC)
        np.testing.assert_allclose(t, c.project(t, exact=False), atol=1e-12)


def test_etgnn_triplets_match_a_direct_enumeration(crystals):
    model = build_model("dielectric", "etgnn", **TINY_BASELINE)
    graph = model.graph(crystals["orthorhombic_mm2"])
    batch = model.prepared_batch([graph])
    t_in, t_out = ETGNN.triplets(batch)
    got = set(zip(t_in.tolist(), t_out.tolist()))
    src, dst, vec = graph.edge_src, graph.edge_dst, graph.edge_vec
    want = {(a, b) for b in range(len(src)) for a in range(len(src))
            if dst[a] == src[b] and not (src[a] == dst[b] and np.allclose(vec[a], -vec[b], atol=1e-6))}
    assert got == want


# ---- evaluation on rotated frames and the CLI ------------------------------------------------
def test_evaluate_cli_and_rotated_frames(tmp_path, mp_root, capsys, monkeypatch):
    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    train(_cfg(tmp_path, mp_root, epochs=1), progress=False, cache_dir=tmp_path / "cache")
    best = tmp_path / "run" / "best.pt"
    outputs = []
    for extra in ([], ["--rotate", "45", "--axis", "x"], ["--rotate", "30", "--axis", "y", "--reflect"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", str(best), "--split", "train", "--json", "--out", str(tmp_path / "ev"), *extra])
        assert exit_info.value.code in (0, None)
        outputs.append(json.loads(capsys.readouterr().out))
    fn = [o["overall"]["fnorm"] for o in outputs]
    assert fn[0] == pytest.approx(fn[1], rel=1e-4) and fn[0] == pytest.approx(fn[2], rel=1e-4)
    assert outputs[0]["overall"]["zero_success"] == 1.0
    assert (tmp_path / "ev.md").read_text().startswith("# ")


def test_evaluate_compares_with_another_model_and_the_trivial_predictors(tmp_path, mp_root, capsys, monkeypatch):
    from gmtnet.data import load_dataset
    from gmtnet.training.metrics import bootstrap_interval, paired_difference

    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    train(_cfg(tmp_path, mp_root, epochs=1), progress=False, cache_dir=tmp_path / "cache")
    best = str(tmp_path / "run" / "best.pt")
    records = load_dataset("dielectric", root=mp_root, split="train")
    labels = np.stack([r.tensor for r in records])
    outputs = {}
    for other in (best, "zero", "train-mean"):
        for extra in ([], ["--rotate", "45", "--axis", "x", "--reflect"]):
            with pytest.raises(SystemExit) as exit_info:
                main(["evaluate", best, "--split", "train", "--json", "--compare", other, *extra])
            assert exit_info.value.code in (0, None)
            outputs[other, bool(extra)] = json.loads(capsys.readouterr().out)
    for rotated in (False, True):
        same = outputs[best, rotated]["comparison"]  # a model against itself: no difference at all
        assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["verdict"] == "not distinguishable"
        zero = outputs["zero", rotated]
        # zero predictor's Fnorm is the mean label norm, whatever the frame
        zero_fnorm = np.linalg.norm(labels.reshape(len(labels), -1), axis=1).mean()
        assert zero["overall"]["fnorm"] - zero["comparison"]["difference"] == pytest.approx(zero_fnorm, rel=1e-9)
    mean = labels.mean(0)
    tm = outputs["train-mean", False]
    mean_fnorm = np.linalg.norm((labels - mean).reshape(len(labels), -1), axis=1).mean()
    assert tm["overall"]["fnorm"] - tm["comparison"]["difference"] == pytest.approx(mean_fnorm, rel=1e-9)
    # the paired interval is the bootstrap interval of the per-crystal differences
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.5, 3.5, 4.5])
    assert paired_difference(a, b) == {"difference": -0.5, "ci95": [-0.5, -0.5], "verdict": "lower", "n": 4}
    assert paired_difference(b, a)["verdict"] == "higher"
    c = np.array([1.0, 3.0, 2.0, 5.0])
    assert paired_difference(a, c)["ci95"] == list(bootstrap_interval(a - c))
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", best, "--split", "train", "--compare", str(tmp_path / "missing.pt")])
    assert exit_info.value.code != 0


def test_reproduce_rejects_unknown_tables(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "table99"])
    assert exit_info.value.code == 1
    assert "unknown table 'table99'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["huber", "fnorm", "relative", "hybrid"])
def test_shard_losses_add_up_to_the_global_batch_loss(kind, rng):
    from gmtnet.training.losses import shard_loss

    pred, target = (torch.as_tensor(rng.normal(size=(6, 3, 3, 3)) * 2) for _ in range(2))
    target[0] = 0.0  # a zero label weighs as one of the floor's size
    kw = dict(huber_delta=0.5, floor=0.3)
    whole = shard_loss(pred, target, kind, 6, **kw)
    parts = shard_loss(pred[:2], target[:2], kind, 6, **kw) + shard_loss(pred[2:], target[2:], kind, 6, **kw)
    torch.testing.assert_close(parts, whole, rtol=1e-12, atol=0)
    errors = torch.stack([torch.linalg.norm((p - t).flatten()) for p, t in zip(pred, target)])
    relative = errors / (torch.stack([torch.linalg.norm(t.flatten()) for t in target]) + 0.3)
    expected = {"huber": torch.nn.functional.huber_loss(pred, target, delta=0.5),
                "fnorm": errors.mean(),  # the Fnorm metric: mean over crystals of the Frobenius norm of the error
                "relative": relative.mean(), "hybrid": errors.mean() + relative.mean()}[kind]
    torch.testing.assert_close(whole, expected, rtol=1e-9, atol=0)
    if kind == "relative":  # every crystal weighs alike: scaling one label and its prediction changes nothing
        big_pred, big_target = pred.clone(), target.clone()
        big_pred[1] *= 1e3
        big_target[1] *= 1e3
        torch.testing.assert_close(shard_loss(big_pred, big_target, kind, 6, floor=1e-9),
                                   shard_loss(pred, target, kind, 6, floor=1e-9), rtol=1e-6, atol=0)


def test_fnorm_loss_has_a_finite_gradient_at_an_exact_fit():
    from gmtnet.training.losses import shard_loss

    pred = torch.zeros(2, 3, 3, requires_grad=True)
    shard_loss(pred, torch.zeros(2, 3, 3), "fnorm", 2).backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="unknown loss"):
        shard_loss(pred, pred, "l3", 2)


def test_train_cli_takes_the_loss_and_refuses_an_unknown_one(tmp_path, mp_root, monkeypatch, capsys):
    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    with pytest.raises(SystemExit) as bad:
        main(["train", "--task", "dielectric", "--loss", "l3", "--out", str(tmp_path / "bad")])
    assert bad.value.code != 0 and not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as ok:
        main(["train", "--task", "dielectric", "--loss", "fnorm", "--huber-delta", "0.5",
              "--weight-decay", "0.01", "--max-label-norm", "1000", "--epochs", "1", "--limit", "8",
              "--out", str(tmp_path / "run")])
    assert ok.value.code in (0, None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["loss"] == "fnorm" and saved["huber_delta"] == 0.5
    assert saved["weight_decay"] == 0.01 and saved["max_label_norm"] == 1000.0
    # defaults: the fast preset, one atom per orbit, the smooth graph of the symmetrized structure
    assert saved["preset"] == "fast" and saved["orbits"] is True and saved["model_overrides"] == {}
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.config.graph == "smooth" and model.config.refine_structure
    assert (model.config.inner_lmax, model.config.message_mul) == (2, 8)
    with pytest.raises(SystemExit) as ok:
        main(["train", "--task", "dielectric", "--preset", "fast", "--all-atoms", "--graph", "knn", "--epochs", "1",
              "--limit", "8", "--out", str(tmp_path / "atoms")])
    assert ok.value.code in (0, None)
    saved = json.loads((tmp_path / "atoms" / "config.json").read_text())
    assert saved["orbits"] is False and load_model(tmp_path / "atoms" / "best.pt").config.graph == "knn"


def test_reproduce_evaluates_a_run_of_several_seeds_as_their_ensemble(tmp_path, mp_root, monkeypatch):
    from gmtnet.model.ensemble import EnsembleModel
    from gmtnet.training import reproduce as rep

    run = rep.Run("tiny", "dielectric", loss="fnorm", seeds=(3, 4), model_overrides=dict(TINY_GMTNET))
    assert [p.name for p in run.run_dirs(tmp_path)] == ["tiny-s3-dielectric", "tiny-s4-dielectric"]
    assert [p.name for p in rep.Run("one", "dielectric").run_dirs(tmp_path)] == ["one-dielectric"]
    monkeypatch.setitem(rep.TABLES, "tiny-table", {"title": "tiny", "runs": [run]})
    monkeypatch.setitem(rep.QUICK, "limit", 12)
    report = rep.reproduce("tiny-table", quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                           data_root=str(mp_root), progress=False, threads=1)
    dirs = sorted(p.name for p in (tmp_path / "runs" / "quick").iterdir())
    assert dirs == ["tiny-s3-dielectric", "tiny-s4-dielectric"]
    configs = [json.loads((tmp_path / "runs" / "quick" / d / "config.json").read_text()) for d in dirs]
    assert [(c["seed"], c["loss"]) for c in configs] == [(3, "fnorm"), (4, "fnorm")]
    assert isinstance(rep._load_run_model([tmp_path / "runs" / "quick" / d / "best.pt" for d in dirs]), EnsembleModel)
    row = json.loads(report.with_suffix(".json").read_text())["results"]["tiny-dielectric"]
    assert np.isfinite(row["metrics"]["fnorm"]) and row["best_epoch"].count("/") == 1


def test_reproduce_fine_tunes_from_the_pretraining_run_of_the_table(tmp_path, mp_root, monkeypatch):
    from gmtnet.training import reproduce as rep

    tiny = dict(model_overrides=dict(TINY_GMTNET), loss="fnorm")
    pre = rep.Run("pre", "dielectric", seeds=(1,), exclude="piezoelectric:val+test", **tiny)
    tuned = rep.Run("tuned", "piezoelectric", seeds=(1,), init_from="pre-dielectric", **tiny)
    monkeypatch.setitem(rep.TABLES, "tiny-transfer", {"title": "tiny", "runs": [pre, tuned]})
    monkeypatch.setitem(rep.QUICK, "limit", 12)
    report = rep.reproduce("tiny-transfer", quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                           data_root=str(mp_root), progress=False, threads=1)
    quick = tmp_path / "runs" / "quick"
    pre_cfg = json.loads((quick / "pre-dielectric" / "config.json").read_text())
    tuned_cfg = json.loads((quick / "tuned-piezoelectric" / "config.json").read_text())
    assert pre_cfg["exclude"] == "piezoelectric:val+test" and pre_cfg["init_from"] is None
    assert tuned_cfg["init_from"] == str(quick / "pre-dielectric" / "best.pt")
    text = report.read_text()
    assert "| pre | dielectric |" in text and "| tuned | piezoelectric |" in text and "Fnorm 95% interval" in text
    # the shipped table: the fine-tuning runs start from the table's own pre-training run
    runs = rep.TABLES["transfer-piezoelectric"]["runs"]
    assert runs[0].exclude == "piezoelectric:val+test"
    assert {r.init_from for r in runs[1:]} == {runs[0].run_dirs(tmp_path)[0].name}


def test_learning_curve_tables_carry_the_trivial_predictors(tmp_path, mp_root, monkeypatch):
    from gmtnet.data import load_dataset
    from gmtnet.training import reproduce as rep

    spec = rep.TABLES["learning-curve-piezoelectric"]
    assert [r.limit for r in spec["runs"]] == [154, 308, 616] and {r.loss for r in spec["runs"]} == {"fnorm"}
    run = rep.Run("tiny", "dielectric", limit=12, loss="fnorm", model_overrides=dict(TINY_GMTNET))
    monkeypatch.setitem(rep.TABLES, "tiny-curve", {"title": "tiny", "runs": [run], "references": [None, 12]})
    monkeypatch.setitem(rep.QUICK, "limit", 12)
    report = rep.reproduce("tiny-curve", quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                           data_root=str(mp_root), progress=False, threads=1)
    results = json.loads(report.with_suffix(".json").read_text())["results"]
    data = load_dataset("dielectric", root=mp_root)
    test, train_labels = data.split("test"), np.stack([r.tensor for r in data.split("train")[:12]])
    labels = np.stack([r.tensor for r in test])
    zero = np.linalg.norm(labels.reshape(len(test), -1), axis=1).mean()
    mean = np.linalg.norm((labels - train_labels.mean(0)).reshape(len(test), -1), axis=1).mean()
    assert results["zero-dielectric"]["metrics"]["fnorm"] == pytest.approx(zero, rel=1e-12)
    assert results["train-mean-n12-dielectric"]["metrics"]["fnorm"] == pytest.approx(mean, rel=1e-12)
    assert "| zero | dielectric |" in report.read_text()


# ---- transfer learning: pre-training without the fine-tuning task's evaluation crystals ----------
def test_exclude_leaves_out_another_tasks_split(tmp_path, mp_root, monkeypatch):
    import gmtnet.training.trainer as trainer
    from gmtnet.data import load_dataset
    from gmtnet.errors import GmtnetError

    piezo = load_dataset("piezoelectric", root=mp_root)
    assert trainer.excluded_ids("piezoelectric:val+test", root=str(mp_root)) == {
        r.material_id for r in piezo if r.split in ("val", "test")}
    for bad in ("piezoelectric", "piezoelectric:holdout"):
        with pytest.raises(GmtnetError, match="TASK:SPLIT"):
            trainer.excluded_ids(bad, root=str(mp_root))
    # the committed fixtures share no crystal between tasks: hold out some dielectric ones instead
    plain = trainer.load_split_records(_cfg(tmp_path, mp_root, limit=None))
    held_out = {plain[0][0].material_id, plain[0][3].material_id, plain[1][0].material_id}
    seen = []
    monkeypatch.setattr(trainer, "excluded_ids", lambda spec, source, root: seen.append(spec) or held_out)
    kept = trainer.load_split_records(_cfg(tmp_path, mp_root, limit=None, exclude="some:test"))
    assert seen == ["some:test"]
    for before, after in zip(plain, kept):
        assert [r.material_id for r in after] == [r.material_id for r in before if r.material_id not in held_out]
    assert sum(map(len, plain)) - sum(map(len, kept)) == 3


def test_graph_cache_is_keyed_by_structures_not_only_ids(tmp_path, mp_root):
    from dataclasses import replace

    from gmtnet.data import load_dataset
    from gmtnet.training.graphs import cache_key, prepare_graphs

    model = build_model("dielectric", **TINY_GMTNET)
    records = list(load_dataset("dielectric", root=mp_root).split("train"))[:3]
    moved = records[0].structure.copy()
    moved.translate_sites([0], [0.01, 0.0, 0.0])  # same id, another structure
    edited = [replace(records[0], structure=moved)] + records[1:]
    assert cache_key(model, records, "mp") == cache_key(model, list(records), "mp")
    assert cache_key(model, records, "mp") != cache_key(model, edited, "mp")
    first = prepare_graphs(model, records, cache_dir=tmp_path, progress=False)
    second = prepare_graphs(model, edited, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2  # a second cache file, not the stale first one
    assert not np.array_equal(first[0].edge_vec, second[0].edge_vec)


def test_max_label_norm_screens_train_and_validation_only(tmp_path, mp_root):
    import gmtnet.training.trainer as trainer

    plain = trainer.load_split_records(_cfg(tmp_path, mp_root, limit=None))
    norms = sorted(float(np.linalg.norm(r.tensor)) for part in plain for r in part)
    cut = norms[len(norms) // 2]  # about half the crystals lie above it
    kept = trainer.load_split_records(_cfg(tmp_path, mp_root, limit=None, max_label_norm=cut))
    for before, after in zip(plain, kept):
        assert [r.material_id for r in after] == [r.material_id for r in before if np.linalg.norm(r.tensor) <= cut]
    assert 0 < sum(map(len, kept)) < sum(map(len, plain))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="max_label_norm"):
            _cfg(tmp_path, mp_root, max_label_norm=bad)


def test_init_from_copies_every_matching_weight_and_leaves_the_head(tmp_path, mp_root):
    from gmtnet.errors import GmtnetError
    from gmtnet.model import build_model
    from gmtnet.model.io import save_model, transfer_weights

    torch.manual_seed(0)
    source = build_model("dielectric", **TINY_GMTNET, parts=False)
    path = save_model(source, tmp_path / "dielectric.pt")
    torch.manual_seed(1)
    target = build_model("piezoelectric", **TINY_GMTNET)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    copied, kept = transfer_weights(target, path)
    state, src = target.state_dict(), source.state_dict()
    assert any(k.startswith("head.") for k in kept) and any(k.startswith("invariant_layers.") for k in copied)
    for k in copied:
        assert torch.equal(state[k], src[k]), k
    for k in kept:
        assert torch.equal(state[k], before[k]), k
    assert any(not torch.equal(before[k], src[k]) for k in copied)  # something was really copied
    with pytest.raises(GmtnetError, match="cannot initialise"):
        transfer_weights(build_model("piezoelectric", architecture="megnet"), path)
    # and through the training loop, recorded in the run's config
    result = train(_cfg(tmp_path, mp_root, "tuned", task="piezoelectric", epochs=1, init_from=str(path)),
                   progress=False, cache_dir=tmp_path / "cache")
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["init_from"] == str(path)
    assert np.isfinite(result["best_val_fnorm"])


# ---- shipping models (scripts/ship_model.py) ---------------------------------------------------
def test_ship_model_adds_runs_to_the_shipped_ensemble_and_rewrites_its_card(tmp_path, mp_root, monkeypatch):
    import importlib.util
    from pathlib import Path

    from gmtnet.model.ensemble import EnsembleModel

    spec = importlib.util.spec_from_file_location("ship_model", Path(__file__).parents[1] / "scripts" / "ship_model.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    monkeypatch.setattr(ship, "PRETRAINED", tmp_path / "pretrained")
    (tmp_path / "pretrained").mkdir()
    runs = []
    for seed in (1, 2, 3):
        train(_cfg(tmp_path, mp_root, f"run{seed}", epochs=1, seed=seed), progress=False, cache_dir=tmp_path / "cache")
        runs.append(tmp_path / f"run{seed}")
    ship.main("dielectric", runs[:2], hardware="test machine")
    first = json.loads((tmp_path / "pretrained" / "dielectric.json").read_text())
    assert [r["seed"] for r in first["runs"]] == [1, 2] and first["hardware"] == "test machine"
    before = load_model(tmp_path / "pretrained" / "dielectric.pt")
    ship.main("dielectric", runs[2:], keep_shipped=True)
    card = json.loads((tmp_path / "pretrained" / "dielectric.json").read_text())
    assert [r["seed"] for r in card["runs"]] == [1, 2, 3] and card["n_members"] == 3 and card["hardware"] == "test machine"
    after = load_model(tmp_path / "pretrained" / "dielectric.pt")
    assert isinstance(after, EnsembleModel) and len(after.members) == 3
    for old, new in zip(before.members, after.members):  # the shipped members are kept as they were
        for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
            assert torch.equal(a, b), k
    third = load_model(runs[2] / "best.pt").state_dict()
    assert all(torch.equal(third[k], v) for k, v in after.members[2].state_dict().items())
    assert "Fnorm 95% interval" in (tmp_path / "pretrained" / "dielectric.md").read_text()
    shipped_bytes = (tmp_path / "pretrained" / "dielectric.pt").read_bytes()
    ship.main("dielectric", [], keep_shipped=True)  # card only: the model file is left as it is
    assert (tmp_path / "pretrained" / "dielectric.pt").read_bytes() == shipped_bytes
    assert len(json.loads((tmp_path / "pretrained" / "dielectric.json").read_text())["runs"]) == 3
    ship.main("dielectric", [], keep_shipped=True, keep_members=[1, 3])  # drop the second member
    card = json.loads((tmp_path / "pretrained" / "dielectric.json").read_text())
    kept = load_model(tmp_path / "pretrained" / "dielectric.pt")
    assert [r["seed"] for r in card["runs"]] == [1, 3] and len(kept.members) == 2
    for old, new in zip([after.members[0], after.members[2]], kept.members):
        assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), new.state_dict().values()))


# ---- the MP-2026 source end to end -------------------------------------------------------------
def test_train_and_evaluate_on_mp2026(tmp_path, mp2026_fixtures, capsys, monkeypatch):
    monkeypatch.setenv("GMTNET_DATA", str(tmp_path / "data"))
    cfg = TrainConfig(task="elastic", source="mp2026", epochs=1, batch_size=8, out=str(tmp_path / "run"),
                      model_overrides=dict(TINY_GMTNET), threads=1)
    train(cfg, progress=False, cache_dir=tmp_path / "cache")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["source"] == "mp2026"
    best = str(tmp_path / "run" / "best.pt")
    outputs = {}
    for other in ("zero", "train-mean"):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", best, "--source", "mp2026", "--split", "train", "--json", "--compare", other])
        assert exit_info.value.code in (0, None)
        outputs[other] = json.loads(capsys.readouterr().out)
    result = outputs["zero"]
    assert result["source"] == "mp2026" and result["n"] == sum(1 for s in mp2026_fixtures["elastic"].values() if s == "train")
    overall = result["overall"]
    assert overall["k_vrh_mae"] > 0 and overall["g_vrh_mae"] > 0 and overall["n_moduli"] == result["n"]
    assert 0 <= overall["n_out_of_bound"] <= result["n"]
    assert outputs["zero"]["comparison"]["n"] == outputs["train-mean"]["comparison"]["n"] == result["n"]
    with pytest.raises(SystemExit):
        main(["evaluate", best, "--source", "mp2026", "--split", "train"])
    table = capsys.readouterr().out
    assert "train split of mp2026" in table and "K_VRH MAE (GPa)" in table and "not positive definite" in table


def test_reproduce_runs_a_table_on_mp2026(tmp_path, mp2026_fixtures, monkeypatch):
    from gmtnet.errors import GmtnetError
    from gmtnet.training import reproduce as rep

    run = rep.Run("tiny", "piezoelectric", loss="fnorm", model_overrides=dict(TINY_GMTNET))
    monkeypatch.setitem(rep.TABLES, "tiny-table", {"title": "tiny", "runs": [run]})
    report = rep.reproduce("tiny-table", quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                           data_root=str(tmp_path / "data"), progress=False, threads=1, source="mp2026")
    assert report.name == "tiny-table-mp2026-quick.md" and "MP-2026 benchmark" in report.read_text()
    config = json.loads((tmp_path / "runs" / "mp2026" / "quick" / "tiny-piezoelectric" / "config.json").read_text())
    assert config["source"] == "mp2026"
    with pytest.raises(GmtnetError, match="needs dielectric runs"):
        rep.reproduce("table2-4", quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                      data_root=str(tmp_path / "data"), progress=False, source="mp2026")


def test_train_takes_its_settings_from_a_config_file(tmp_path, mp_root, monkeypatch, capsys):
    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    settings = {"task": "dielectric", "epochs": 1, "batch_size": 8, "limit": 8, "val_limit": 2, "threads": 1,
                "loss": "fnorm", "model_overrides": dict(TINY_GMTNET)}
    (tmp_path / "run.json").write_text(json.dumps(settings))
    with pytest.raises(SystemExit) as ok:
        main(["train", "--config", str(tmp_path / "run.json"), "--seed", "3", "--out", str(tmp_path / "a")])
    assert ok.value.code in (0, None)
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (saved["seed"], saved["loss"], saved["limit"], saved["model_overrides"]) == (3, "fnorm", 8, TINY_GMTNET)
    toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items() if k != "model_overrides")
    toml += "\n[model_overrides]\n" + "\n".join(f"{k} = {v}" for k, v in TINY_GMTNET.items()) + "\n"
    (tmp_path / "run.toml").write_text(toml)
    with pytest.raises(SystemExit) as again:  # a run's own config.json, or TOML, reproduces it
        main(["train", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")])
    assert again.value.code in (0, None)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["seed"] == 3
    with pytest.raises(SystemExit) as from_toml:
        main(["train", "--config", str(tmp_path / "run.toml"), "--no-physical-bounds", "--out", str(tmp_path / "c")])
    assert from_toml.value.code in (0, None)
    assert json.loads((tmp_path / "c" / "config.json").read_text())["model_overrides"] == {**TINY_GMTNET,
                                                                                           "physical_bounds": False}
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({**settings, "warp": 9}))
    with pytest.raises(SystemExit) as bad:
        main(["train", "--config", str(tmp_path / "bad.json"), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert bad.value.code == 1 and "bad.json: unknown setting(s) warp" in err and not (tmp_path / "d").exists()


# ---- experiments as configuration ------------------------------------------------------------
def test_shipped_tables_are_the_papers_experiments():
    from gmtnet.training.reproduce import TABLES

    assert {"table2-4", "table5", "table6", "table7", "table11", "table12", "transfer-piezoelectric",
            "learning-curve-dielectric", "learning-curve-piezoelectric", "learning-curve-elastic"} == set(TABLES)
    assert [(r.label, r.model) for r in TABLES["table2-4"]["runs"][:3]] == [
        ("megnet", "megnet"), ("etgnn", "etgnn"), ("gmtnet", "gmtnet")]
    ablation = {r.label: r.model_overrides for r in TABLES["table7"]["runs"]}
    assert ablation["gmtnet-no-symmetry"] == {"symmetrize_features": False, "project_output": False,
                                              "snap_output": False}
    assert TABLES["table6"]["kind"] == "timing" and TABLES["table12"]["kind"] == "rotations"
    assert TABLES["learning-curve-elastic"]["references"] == [None, 203, 406, 811]
    assert {r.group_average for r in TABLES["table11"]["runs"]} == {False, True}


@pytest.mark.parametrize("text, message", [
    ("title = 'x'\n", "no \\[\\[runs\\]\\]"),
    ("colour = 'x'\n[[runs]]\nlabel = 'a'\ntask = 'dielectric'\n", "unknown key"),
    ("kind = 'speed'\n[[runs]]\nlabel = 'a'\ntask = 'dielectric'\n", "kind must be"),
    ("[[runs]]\nlabel = 'a'\ntask = 'magnetic'\n", "unknown task"),
    ("[[runs]]\nlabel = 'a'\n", "missing task"),
    ("[[runs]]\nlabel = 'a'\ntask = 'dielectric'\nepochz = 3\n", "unknown setting"),
    ("[[runs]]\nlabel = 'a'\ntask = 'dielectric'\nseeds = []\n", "seeds must be"),
    ("references = [-1]\n[[runs]]\nlabel = 'a'\ntask = 'dielectric'\n", "references must be"),
    ("[[runs]\n", "not TOML"),
])
def test_experiment_files_are_refused_by_name_of_the_problem(text, message):
    from gmtnet.errors import GmtnetError
    from gmtnet.training.experiment import parse_experiment

    with pytest.raises(GmtnetError, match=message):
        parse_experiment(text, "mine.toml")


def test_reproduce_runs_an_experiment_file(tmp_path, mp_root, monkeypatch, capsys):
    from gmtnet.training import reproduce as rep

    overrides = ", ".join(f"{k} = {v}" for k, v in TINY_GMTNET.items())
    experiment = tmp_path / "my-study.toml"
    experiment.write_text(f'title = "my study"\nreferences = [0]\n\n[[runs]]\nlabel = "small"\ntask = "diele"\n'
                          f'loss = "fnorm"\nseeds = [2]\nmodel_overrides = {{ {overrides} }}\n')
    monkeypatch.setitem(rep.QUICK, "limit", 12)
    report = rep.reproduce(str(experiment), quick=True, runs_root=tmp_path / "runs", reports=tmp_path / "reports",
                           data_root=str(mp_root), progress=False, threads=1)
    assert report.name == "my-study-quick.md" and report.read_text().startswith("# my study")
    assert "| small | dielectric |" in report.read_text() and "| zero | dielectric |" in report.read_text()
    config = json.loads((tmp_path / "runs" / "quick" / "small-dielectric" / "config.json").read_text())
    assert (config["seed"], config["loss"], config["model_overrides"]["node_dim"]) == (2, "fnorm", 16)
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", str(tmp_path / "missing.toml"), "--quick"])
    assert exit_info.value.code == 1 and "error:" in capsys.readouterr().err
