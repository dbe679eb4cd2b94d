"""Prediction: the API, the CLI, derived properties, pictures and bad input (tiny untrained models
unless a test is about the shipped ones)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Lattice, Structure

import gmtnet
from gmtnet.cli.app import main
from gmtnet.model import build_model, save_model
from gmtnet.model.error_bound import model_error_bound
from gmtnet.model.network import GMTNet
from gmtnet.prediction import Predictor, load_pretrained, model_card, pretrained_path
from gmtnet.prediction.plots import compliance, directional_magnitude, plot_surface
from gmtnet.prediction.properties import elastic_properties, piezoelectric_properties
from gmtnet.symmetry import SymmetryConstraints
from gmtnet.tensors import DIELECTRIC, ELASTIC, PIEZOELECTRIC, from_voigt, rotate_tensor, to_voigt
from gmtnet.tensors.transform import random_orthogonal
from gmtnet.training.evaluate import rotate_structure

TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)
TASKS = ("dielectric", "piezoelectric", "elastic")


@pytest.fixture(scope="module")
def tiny_models():
    return {t: build_model(t, **TINY, output_scale={"dielectric": 5.0, "piezoelectric": 0.5, "elastic": 100.0}[t],
                           seed=3, **({"part_scales": [5.0, 5.0]} if t == "dielectric" else {})).eval() for t in TASKS}


@pytest.fixture(scope="module")
def tiny_model_files(tmp_path_factory, tiny_models):
    d = tmp_path_factory.mktemp("models")
    return {t: save_model(m, d / f"{t}.pt") for t, m in tiny_models.items()}


# ---- shipped models --------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_shipped_models_load_and_have_cards(task):
    assert pretrained_path(task).is_file()
    assert pretrained_path(task).stat().st_size < 10e6
    model = load_pretrained(task)
    assert model.config.task == task and not model.training
    card = model_card(task)
    assert card["task"] == task and card["split"] == "train" and "test_metrics" in card
    assert card["test_metrics"]["overall"]["n"] > 0
    # a calibrated 90% error bound, fitted on the val split of the model's own benchmark
    bound = model_error_bound(model)
    assert bound is not None and bound.coverage == 0.9 and bound.calibration == f"{card.get('source', 'mp')} val"
    assert card["error_bound"] == bound.to_dict() and bound.calibration_coverage >= 0.9
    assert 0 <= card["test_error_bound"]["overall"]["coverage"] <= 1


def test_shipped_models_predict_examples_with_exact_symmetry(crystals):
    s = crystals["wurtzite_ZnO"]
    out = gmtnet.predict([s], task="all")
    for task, ttype in (("dielectric", DIELECTRIC), ("piezoelectric", PIEZOELECTRIC), ("elastic", ELASTIC)):
        t = out[task][0]
        c = SymmetryConstraints.from_structure(s, ttype)
        assert np.all(t[c.zero_mask()] == 0.0)
        for a, b, sign in c.equalities:
            assert t[b] == sign * t[a]
        assert np.abs(t).max() > 0


def test_shipped_networks_are_built_only_when_first_needed(crystals, monkeypatch):
    """Preparing crystals needs only the models' configs (read from the files); the networks are
    built at the first batch, so that worker processes can start meanwhile."""
    import gmtnet.prediction.predictor as predictor_module
    from gmtnet.model.io import read_model_config

    built = []
    monkeypatch.setattr(predictor_module, "load_pretrained", lambda t: built.append(t) or load_pretrained(t))
    predictor = Predictor("all")
    for task in TASKS:
        assert predictor.configs[task] == read_model_config(pretrained_path(task)) == load_pretrained(task).config
    prepared = predictor.prepare(crystals["wurtzite_ZnO"], "ZnO")
    assert built == [] and set(prepared.graphs) == set(TASKS)
    assert all(g.point_group is None for g in prepared.graphs.values())  # attached for the batch, not here
    result = predictor.finish([prepared])[0]
    assert built == list(TASKS) and result.ok
    assert result.independent["elastic"] == ["C11", "C12", "C13", "C33", "C44"]
    np.testing.assert_array_equal(result.tensors["elastic"], gmtnet.predict([crystals["wurtzite_ZnO"]], "elastic")[0])


def test_reading_a_model_config_checks_the_file(tiny_model_files, tmp_path):
    from gmtnet.errors import GmtnetError
    from gmtnet.model.io import read_model_config

    config = read_model_config(tiny_model_files["piezoelectric"])
    assert config.task == "piezoelectric" and config.node_dim == TINY["node_dim"]
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(GmtnetError, match="not a gmtnet model file"):
        read_model_config(tmp_path / "junk.pt")


def test_threads_beside_workers_leave_the_workers_their_cores():
    import torch
    from threadpoolctl import threadpool_info

    from gmtnet.prediction.predictor import available_cores, threads_beside_workers

    before = torch.get_num_threads()
    with threads_beside_workers(0):
        assert torch.get_num_threads() == before
    with threads_beside_workers(1):
        assert torch.get_num_threads() == max(1, available_cores() - 1)
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with threads_beside_workers(available_cores() + 3):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ---- API -------------------------------------------------------------------------------------
def test_predict_accepts_structures_atoms_and_paths(tiny_models, crystals, tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    s = crystals["alpha_quartz"]
    path = tmp_path / "quartz.cif"
    s.to(filename=str(path))
    atoms = AseAtomsAdaptor.get_atoms(s)
    out = gmtnet.predict([s, atoms, str(path)], task="piezoelectric", models=tiny_models)
    assert out.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(out[1], out[0], atol=1e-12)
    np.testing.assert_allclose(out[2], out[0], atol=1e-5)  # CIF rounds coordinates
    objs = gmtnet.predict(s, task="elastic", models=tiny_models, as_pymatgen=True)
    assert isinstance(objs[0], ElasticTensor)
    both = gmtnet.predict([s], task="all", models=tiny_models)
    assert set(both) == {*TASKS, "dielectric_electronic", "dielectric_ionic"}  # the dielectric model's parts too


@pytest.mark.parametrize("improper", [False, True])
def test_predictions_rotate_with_the_input_frame(tiny_models, crystals, improper, rng):
    s = crystals["monoclinic_2"]
    r = random_orthogonal(rng, improper=improper)
    a = gmtnet.predict([s], models=tiny_models)
    b = gmtnet.predict([rotate_structure(s, r)], models=tiny_models)
    for task in TASKS:
        scale = np.abs(a[task]).max()
        np.testing.assert_allclose(b[task][0], rotate_tensor(a[task][0], r), atol=1e-4 * scale)


def test_moyopy_symmetry_backend_gives_the_same_predictions(tiny_models, crystals):
    structures = [crystals[n] for n in ("wurtzite_ZnO", "alpha_quartz", "rutile_TiO2", "monoclinic_2", "triclinic_1")]
    assert Predictor("all", tiny_models).symmetry_backend == "moyopy"  # the default of prediction
    a = Predictor("all", tiny_models, symmetry_backend="spglib").predict(structures)
    b = Predictor("all", tiny_models).predict(structures)
    for x, y in zip(a, b):
        assert x.ok and y.ok and (x.spacegroup_symbol, x.point_group) == (y.spacegroup_symbol, y.point_group)
        for task in TASKS:
            np.testing.assert_array_equal(x.tensors[task], y.tensors[task])
    with pytest.raises(gmtnet.errors.GmtnetError, match="unknown symmetry backend 'x'"):
        Predictor("all", tiny_models, symmetry_backend="x")


def test_one_atom_cell_is_predicted(tiny_models):
    cu = Structure(Lattice.cubic(3.61).matrix * 0.5 + 0.0, ["Cu"], [[0, 0, 0]])  # simple cubic, one atom
    result = Predictor("all", tiny_models).predict([cu])[0]
    assert result.ok, result.error
    assert np.all(result.tensors["piezoelectric"] == 0.0)  # centrosymmetric
    assert result.independent["elastic"] == ["C11", "C12", "C44"]


@pytest.mark.parametrize("name,task,expected", [
    ("alpha_quartz", "elastic", ["C11", "C12", "C13", "C14", "C33", "C44"]),  # C66 = (C11 - C12) / 2
    ("wurtzite_ZnO", "elastic", ["C11", "C12", "C13", "C33", "C44"]),
    ("alpha_quartz", "piezoelectric", ["e11", "e14"]),
    ("rutile_TiO2", "dielectric", ["eps11", "eps33"]),
])
def test_independent_components_count_matches_the_symmetry(tiny_models, crystals, name, task, expected):
    result = Predictor(task, tiny_models).predict([crystals[name]])[0]
    assert result.independent[task] == expected


def test_bad_inputs_give_one_line_errors_per_item(tiny_models, tmp_path):
    (tmp_path / "garbage.cif").write_text("this is not a crystal\n")
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    partial = Structure(Lattice.cubic(4.0), [{"Na": 0.7}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    overlap = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    unknown = Structure(Lattice.cubic(4.0), ["Md", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    huge = Structure(Lattice.cubic(3.0), ["Si"], [[0, 0, 0]]) * (9, 8, 7)  # 504 atoms
    items = [tmp_path / "garbage.cif", disordered, partial, overlap, unknown, huge]
    results = Predictor("dielectric", tiny_models).predict(items)
    errors = [r.error for r in results]
    assert all(e and "\n" not in e for e in errors), errors
    for e, word in zip(errors[1:], ["disordered", "partial occupancy", "overlapping", "unknown element", "limit is 500"]):
        assert word in e


# ---- derived properties ----------------------------------------------------------------------
def test_elastic_properties_match_pymatgen_and_isotropic_formulas():
    lam, mu = 60.0, 40.0  # isotropic: C11 = lam + 2 mu, C12 = lam, C44 = mu
    c = from_voigt(np.array([[lam + 2 * mu, lam, lam, 0, 0, 0], [lam, lam + 2 * mu, lam, 0, 0, 0],
                             [lam, lam, lam + 2 * mu, 0, 0, 0], [0, 0, 0, mu, 0, 0], [0, 0, 0, 0, mu, 0],
                             [0, 0, 0, 0, 0, mu]]), ELASTIC)
    p = elastic_properties(c)
    k = lam + 2 * mu / 3
    assert p["k_voigt"] == pytest.approx(k) and p["k_reuss"] == pytest.approx(k) and p["g_vrh"] == pytest.approx(mu)
    assert p["youngs_modulus"] == pytest.approx(mu * (3 * lam + 2 * mu) / (lam + mu))
    assert p["poisson_ratio"] == pytest.approx(lam / (2 * (lam + mu)))
    assert p["universal_anisotropy"] == pytest.approx(0.0, abs=1e-12) and p["born_stable"]
    assert p["k_vrh"] == pytest.approx(ElasticTensor(c).k_vrh)
    assert not elastic_properties(-c)["born_stable"]


@pytest.mark.parametrize("seed", range(5))
def test_elastic_properties_equal_pymatgen_elastic_tensor(seed):
    """Random stable and unstable stiffnesses: every modulus as pymatgen's ElasticTensor gives it."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(6, 6)) * 40
    c_v = a @ a.T + (np.eye(6) * 50 if seed % 2 else -np.eye(6) * 400)
    c = from_voigt(c_v, ELASTIC)
    p, et = elastic_properties(c), ElasticTensor(c)
    for name in ("k_voigt", "g_voigt", "k_reuss", "g_reuss", "k_vrh", "g_vrh", "universal_anisotropy"):
        assert p[name] == pytest.approx(float(getattr(et, name)), rel=1e-10, abs=1e-9), name
    assert p["youngs_modulus"] == pytest.approx(float(et.y_mod) / 1e9, rel=1e-10)
    assert p["poisson_ratio"] == pytest.approx(float(et.homogeneous_poisson), rel=1e-10)
    assert p["born_stable"] == bool(np.linalg.eigvalsh(c_v).min() > 0)


def test_elastic_properties_of_a_singular_stiffness_leave_reuss_out():
    c_v = np.zeros((6, 6))
    c_v[:3, :3] = 100.0  # rank 1
    p = elastic_properties(from_voigt(c_v, ELASTIC))
    assert p["k_voigt"] == pytest.approx(100.0) and p["k_reuss"] is None and p["universal_anisotropy"] is None


def test_piezo_strain_coefficients_are_e_times_compliance():
    normal = (np.arange(6)[:, None] < 3) * (np.arange(6)[None] < 3)
    c_v = np.diag([200.0, 200, 200, 50, 50, 50]) + 60 * (np.ones((6, 6)) - np.eye(6)) * normal
    e_v = np.zeros((3, 6))
    e_v[2, 2], e_v[2, 0], e_v[0, 4] = 1.2, -0.5, 0.3
    p = piezoelectric_properties(from_voigt(e_v, PIEZOELECTRIC), from_voigt(c_v, ELASTIC))
    d = np.asarray(p["d_voigt_pC_per_N"])
    np.testing.assert_allclose(d @ c_v / 1e3, e_v, atol=1e-12)  # e = d C
    assert p["max_abs_e"] == 1.2 and p["max_abs_e_component"] == "e33"
    assert p["d_voigt_pC_per_N"][0][4] == pytest.approx(0.3 / 50 * 1e3)  # d15 = e15 / C55


# ---- pictures --------------------------------------------------------------------------------
def test_directional_youngs_modulus_of_a_cubic_crystal():
    c = from_voigt(np.array([[166, 64, 64, 0, 0, 0], [64, 166, 64, 0, 0, 0], [64, 64, 166, 0, 0, 0],
                             [0, 0, 0, 80, 0, 0], [0, 0, 0, 0, 80, 0], [0, 0, 0, 0, 0, 80.0]]), ELASTIC)  # Si
    s_v = np.linalg.inv(to_voigt(c, ELASTIC))
    e100 = directional_magnitude("elastic", c, np.array([1.0, 0, 0]))
    assert e100 == pytest.approx(1 / s_v[0, 0])
    e111 = directional_magnitude("elastic", c, np.ones(3) / np.sqrt(3))
    s11, s12, s44 = s_v[0, 0], s_v[0, 1], s_v[3, 3]
    assert 1 / e111 == pytest.approx(s11 - 2 * (s11 - s12 - s44 / 2) / 3)
    eye = np.eye(3)
    sym_identity = 0.5 * (np.einsum("im,jn->ijmn", eye, eye) + np.einsum("in,jm->ijmn", eye, eye))
    np.testing.assert_allclose(np.einsum("ijkl,klmn->ijmn", compliance(c), c), sym_identity, atol=1e-12)


def test_dielectric_and_piezo_surfaces(tmp_path):
    eps = np.diag([2.0, 3.0, 4.0])
    assert directional_magnitude("dielectric", eps, np.array([0, 0, 1.0])) == pytest.approx(4.0)
    e = from_voigt(np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 1.5, 0, 0, 0.0]]), PIEZOELECTRIC)
    assert directional_magnitude("piezoelectric", e, np.array([0, 0, 1.0])) == pytest.approx(1.5)
    path = plot_surface("dielectric", eps, tmp_path / "eps.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- CLI -------------------------------------------------------------------------------------
def _run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def test_predict_cli_formats_plots_and_batch_errors(tiny_model_files, tmp_path, capsys, crystals, monkeypatch):
    models = [f"--model={t}={p}" for t, p in tiny_model_files.items()]
    folder = tmp_path / "in"
    folder.mkdir()
    crystals["wurtzite_ZnO"].to(filename=str(folder / "ZnO.cif"))
    crystals["rocksalt_NaCl"].to(filename=str(folder / "POSCAR"), fmt="poscar")
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    code, out, err = _run(["predict", str(folder), *models, "--format", "json", "--plot", str(tmp_path / "png")], capsys)
    assert code == 0  # a batch with some good files succeeds; bad ones are reported
    rows = json.loads(out)
    assert {r["source"].rsplit("/", 1)[-1]: bool(r["error"]) for r in rows} == {
        "broken.cif": True, "POSCAR": False, "ZnO.cif": False}
    assert "error: " in err and "broken.cif" in err
    zno = next(r for r in rows if r["source"].endswith("ZnO.cif"))
    assert zno["crystal_system"] == "hexagonal" and len(zno["tensors"]["elastic"]["voigt"]) == 6
    pngs = sorted(p.name for p in (tmp_path / "png").glob("ZnO_*.png"))
    stable = zno["properties"]["elastic"]["born_stable"]  # no Young's surface for an unstable stiffness
    assert pngs == ["ZnO_dielectric.png", *(["ZnO_elastic.png"] if stable else []), "ZnO_piezoelectric.png"]
    assert stable or "elastic surface skipped" in err
    code, out, _ = _run(["predict", str(folder / "ZnO.cif"), *models, "--format", "csv",
                         "--out", str(tmp_path / "o.csv")], capsys)
    header = (tmp_path / "o.csv").read_text().splitlines()[0]
    assert code == 0 and "elastic_C11" in header and "dielectric_k_vrh" not in header
    code, out, _ = _run(["predict", str(folder / "ZnO.cif"), *models, "--task", "dielectric"], capsys)
    assert "hexagonal" in out and "independent (2): eps11, eps33" in out
    code, fast, _ = _run(["predict", str(folder / "ZnO.cif"), *models, "--task", "dielectric",
                          "--symmetry-backend", "spglib"], capsys)
    assert code == 0 and fast == out
    compiled = []
    monkeypatch.setattr(GMTNet, "compile_kernels", lambda self: compiled.append(self.config.task))
    code, again, _ = _run(["predict", str(folder / "ZnO.cif"), *models, "--task", "dielectric", "--compile"], capsys)
    assert code == 0 and again == out and compiled == ["dielectric"]
    code, _, err = _run(["predict", str(folder / "ZnO.cif"), *models, "--symmetry-backend", "nope"], capsys)
    assert code == 1 and err.count("\n") == 1 and "unknown symmetry backend 'nope'" in err


def test_predict_cli_single_bad_file_fails_and_keeps_existing_output(tiny_model_files, tmp_path, capsys):
    models = [f"--model={t}={p}" for t, p in tiny_model_files.items()]
    target = tmp_path / "out.json"
    target.write_text("previous results\n")
    code, _, err = _run(["predict", str(tmp_path / "missing.cif"), *models, "--out", str(target)], capsys)
    assert code == 1 and "add --overwrite" in err  # refused before anything is predicted
    code, _, err = _run(["predict", str(tmp_path / "missing.cif"), *models, "--out", str(target), "--overwrite"], capsys)
    assert code == 1 and err.count(str(tmp_path / "missing.cif")) == 1  # the file named once
    assert target.read_text() == "previous results\n"  # nothing written when nothing was predicted


# ---- screening many structures: streaming, resume, workers ------------------------------------
def _screen_folder(tmp_path, crystals, names=("wurtzite_ZnO", "rocksalt_NaCl", "rutile_TiO2", "alpha_quartz")):
    folder = tmp_path / "many"
    folder.mkdir()
    for name in names:
        crystals[name].to(filename=str(folder / f"{name}.cif"))
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    return folder


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_streamed_predictions_resume_after_an_interruption(tiny_model_files, tmp_path, capsys, crystals, fmt,
                                                           monkeypatch):
    models = [f"--model={t}={p}" for t, p in tiny_model_files.items()]
    folder = _screen_folder(tmp_path, crystals)
    full, cut = tmp_path / f"full.{fmt}", tmp_path / f"cut.{fmt}"
    args = ["predict", str(folder), *models, "--format", fmt, "--chunk-size", "2", "--workers", "0"]
    assert _run([*args, "--out", str(full)], capsys)[0] == 0
    # interrupt after the first chunk of two structures, and leave half a row behind
    original, calls = Predictor.finish, {"n": 0}

    def finish_then_stop(self, prepared):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return original(self, prepared)

    monkeypatch.setattr(Predictor, "finish", finish_then_stop)
    with pytest.raises(SystemExit) as stopped:  # Ctrl-C: exit status 130
        main([*args, "--out", str(cut)])
    assert stopped.value.code == 130
    monkeypatch.setattr(Predictor, "finish", original)
    text = cut.read_text()
    assert len(text.splitlines()) == 2 + (fmt == "csv")  # the finished chunk is on disk
    with open(cut, "a") as handle:
        handle.write('{"source": "half a ro' if fmt == "jsonl" else "half,a,ro")
    code, _, err = _run([*args, "--out", str(cut)], capsys)  # no --resume: refuse, keep the file
    assert code == 1 and "--resume" in err
    code, _, err = _run([*args, "--out", str(cut), "--resume"], capsys)
    assert code == 0 and "2 of 5 structures already done" in err

    def rows(path):
        if fmt == "jsonl":
            return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["source"])
        import csv

        return sorted(csv.DictReader(path.open()), key=lambda r: r["source"])

    assert rows(cut) == rows(full)  # nothing redone, nothing lost, the half row gone
    assert len(rows(full)) == 5 and sum(bool(r["error"]) for r in rows(full)) == 1


def test_list_files_and_dataloader_workers_give_the_same_predictions(tiny_models, tmp_path, crystals):
    from gmtnet.cli.predict_command import read_list_file

    folder = _screen_folder(tmp_path, crystals)
    listing = tmp_path / "list.txt"
    listing.write_text("# structures to screen\n" + "\n".join(f"many/{p.name}" for p in sorted(folder.iterdir())) + "\n\n")
    files = read_list_file(listing)
    assert [f.name for f in files] == sorted(p.name for p in folder.iterdir()) and all(f.is_file() for f in files)
    predictor = Predictor("all", tiny_models)
    serial = list(predictor.stream(files, workers=0, chunk_size=2))
    parallel = list(predictor.stream(files, workers=2, chunk_size=2))
    assert [r.source for r in parallel] == [r.source for r in serial]
    for a, b in zip(serial, parallel):  # torch runs on fewer threads beside workers: float32 rounding
        assert a.error == b.error and a.independent == b.independent
        for t in a.tensors:
            np.testing.assert_allclose(a.tensors[t], b.tensors[t], rtol=1e-5, atol=1e-6 * np.abs(a.tensors[t]).max())
            assert np.array_equal(a.tensors[t] == 0, b.tensors[t] == 0)  # the same exact zeros


def test_chunks_hold_chunk_size_results_whatever_the_model_batch(tiny_models, crystals):
    """Workers hand over one model batch at a time; results still come in chunks of chunk_size,
    in order."""
    names = ["rocksalt_NaCl", "wurtzite_ZnO", "alpha_quartz", "rutile_TiO2", "zincblende_GaAs"]
    structures = [crystals[n] for n in names]
    for batch_size, chunk_size, workers in ((2, 3, 1), (64, 2, 0), (1, 5, 2)):
        predictor = Predictor("dielectric", {"dielectric": tiny_models["dielectric"]}, batch_size=batch_size)
        chunks = list(predictor.chunks(structures, names, workers=workers, chunk_size=chunk_size))
        sizes = [chunk_size] * (len(names) // chunk_size) + ([len(names) % chunk_size] if len(names) % chunk_size else [])
        assert [len(c) for c in chunks] == sizes
        assert [r.source for c in chunks for r in c] == names and all(r.ok for c in chunks for r in c)


def test_resume_refuses_a_file_of_another_task(tiny_model_files, tmp_path, capsys, crystals):
    models = [f"--model={t}={p}" for t, p in tiny_model_files.items()]
    folder = _screen_folder(tmp_path, crystals, names=("rocksalt_NaCl",))
    out = tmp_path / "o.csv"
    assert _run(["predict", str(folder), *models, "--format", "csv", "--out", str(out), "--task", "dielectric"],
                capsys)[0] == 0
    code, _, err = _run(["predict", str(folder), *models, "--format", "csv", "--out", str(out), "--resume"], capsys)
    assert code == 1 and "columns" in err


# ---- inputs that are not what they seem ----------------------------------------------------------
def test_a_supercell_is_predicted_with_its_crystals_whole_point_group(tiny_models, crystals):
    """A 1x1x2 cell of a cubic crystal: cubic zeros and equalities (eps11 = eps22 = eps33 exactly),
    the same tensors as the crystal itself."""
    crystal = crystals["rocksalt_NaCl"]
    supercell = crystal.copy()
    supercell.make_supercell([1, 1, 2])
    a, b = Predictor("all", tiny_models).predict([crystal, supercell])
    assert b.point_group == "m-3m" and b.independent == a.independent
    assert b.independent["dielectric"] == ["eps11"] and b.n_atoms == 2 * a.n_atoms
    eps = b.tensors["dielectric"]
    assert eps[0, 0] == eps[1, 1] == eps[2, 2] and eps[0, 1] == eps[0, 2] == eps[1, 2] == 0.0
    for task in TASKS:
        np.testing.assert_allclose(b.tensors[task], a.tensors[task], rtol=1e-5, atol=1e-7)


def test_slabs_and_molecules_are_predicted_with_a_loud_warning(tiny_models, crystals, tmp_path, capsys):
    from gmtnet.data.structures import vacuum_gaps

    bulk = crystals["rocksalt_NaCl"]
    slab = Structure(Lattice.from_parameters(5.64, 5.64, 35.64, 90, 90, 90), ["Na", "Cl", "Na", "Cl"],
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 2.82 / 35.64], [0, 0, 2.82 / 35.64]])
    molecule = Structure(Lattice.cubic(20.0), ["C", "O"], [[0, 0, 0], [1.13 / 20, 0, 0]])
    assert vacuum_gaps(bulk) == []
    assert [name for name, _ in vacuum_gaps(slab)] == ["c"] and vacuum_gaps(slab)[0][1] > 30
    assert [name for name, _ in vacuum_gaps(molecule)] == ["a", "b", "c"]
    results = Predictor("dielectric", tiny_models).predict([bulk, slab, molecule])
    assert [len(r.warnings) for r in results] == [0, 1, 1] and all(r.ok for r in results)
    assert "a slab or layer" in results[1].warnings[0] and "a molecule or cluster" in results[2].warnings[0]
    with pytest.warns(gmtnet.prediction.predictor.PredictionWarning, match="vacuum in the cell"):
        gmtnet.predict([slab], task="dielectric", models=tiny_models)
    slab.to(filename=str(tmp_path / "slab.cif"))
    models = [f"--model=dielectric={save_model(tiny_models['dielectric'], tmp_path / 'd.pt')}"]
    code, out, err = _run(["predict", str(tmp_path / "slab.cif"), *models, "--task", "dielectric"], capsys)
    assert code == 0 and "WARNING: vacuum in the cell" in out and err.startswith("warning: ")
    code, out, _ = _run(["predict", str(tmp_path / "slab.cif"), *models, "--task", "dielectric", "--format", "json"], capsys)
    assert "vacuum" in json.loads(out)[0]["warnings"][0]
    code, _, _ = _run(["predict", str(tmp_path / "slab.cif"), *models, "--task", "dielectric", "--format", "csv",
                       "--out", str(tmp_path / "o.csv")], capsys)
    assert "vacuum in the cell" in (tmp_path / "o.csv").read_text()


def test_structures_are_symmetrized_before_their_graph_unless_asked_not_to(tiny_models, crystals, rng):
    """A distorted crystal is predicted from its symmetrized form (the same tensors as the ideal
    form gives, same frame); --raw-structure predicts from the structure as given. The tolerance
    used and the choice are part of every prediction and every output format."""
    from gmtnet.prediction.formatting import as_csv
    from gmtnet.symmetry import symmetrize_structure

    s = crystals["alpha_quartz"]
    distorted = Structure(s.lattice, s.species, s.cart_coords + 2e-4 * rng.normal(size=(len(s), 3)),
                          coords_are_cartesian=True)
    symmetrized = Predictor("all", tiny_models).predict([distorted, symmetrize_structure(distorted)])
    raw = Predictor("all", tiny_models, refine=False).predict([distorted])[0]
    for task in TASKS:
        np.testing.assert_allclose(symmetrized[0].tensors[task], symmetrized[1].tensors[task], rtol=0, atol=1e-6)
        difference = np.abs(raw.tensors[task] - symmetrized[0].tensors[task]).max()
        assert difference > 1e-9 * np.abs(symmetrized[0].tensors[task]).max(), task
    assert symmetrized[0].refined and not raw.refined and symmetrized[0].symprec == raw.symprec == 1e-3
    row = symmetrized[0].to_dict()
    assert row["symprec"] == 1e-3 and row["refined"] is True
    header, values = as_csv([raw]).splitlines()[:2]
    assert dict(zip(header.split(","), values.split(",")))["refined"] == "False"


def test_predict_cli_raw_structure_option(tiny_model_files, tmp_path, capsys, crystals):
    models = [f"--model={t}={p}" for t, p in tiny_model_files.items()]
    path = tmp_path / "ZnO.cif"
    crystals["wurtzite_ZnO"].to(filename=str(path))
    code, out, _ = _run(["predict", str(path), *models, "--task", "dielectric"], capsys)
    assert code == 0 and "(symprec 0.001 A, symmetrized)" in out
    code, out, _ = _run(["predict", str(path), *models, "--task", "dielectric", "--raw-structure", "--format", "json"],
                        capsys)
    assert code == 0 and json.loads(out)[0]["refined"] is False
