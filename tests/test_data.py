"""Curated datasets: the MP benchmark (fixtures offline, full download online), JARVIS pickles,
user files, splits and statistics."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from gmtnet.data import load_dataset
from gmtnet.data.curation import frame_error
from gmtnet.data.info import summarize
from gmtnet.data.sources import mp
from gmtnet.data.splits import mp_splits, random_split, split_lookup
from gmtnet.errors import DataNotFoundError, GmtnetError
from gmtnet.symmetry import SymmetryConstraints, analyze_symmetry
from gmtnet.tensors import TENSOR_TYPES, VASP_VOIGT_ORDER, get_tensor_type, to_voigt
from gmtnet.utils.io import atomic_write_bytes

TASKS = list(TENSOR_TYPES)
EXPECTED_FULL = {  # the shared benchmark's curation result
    "dielectric": (1002, {"frame": 39, "magnitude": 15}, (801, 100, 101)),
    "piezoelectric": (770, {"frame": 171}, (616, 77, 77)),
    "elastic": (1014, {"frame": 167}, (811, 101, 102)),
}


def assert_labels_exactly_symmetric(dataset):
    ttype = get_tensor_type(dataset.task)
    for r in dataset:
        sym = analyze_symmetry(r.structure, 1e-3)
        c = SymmetryConstraints.from_rotations(sym.rotations, ttype)
        assert np.all(r.tensor[c.zero_mask()] == 0.0), r.material_id
        for a, b, s in c.equalities:
            assert r.tensor[b] == s * r.tensor[a], r.material_id
        assert r.tensor.dtype == np.float64 and r.tensor.shape == ttype.shape


@pytest.mark.parametrize("task", TASKS)
def test_fixture_curation_keeps_benchmark_records_and_reports_the_rest(mp_root, task):
    dataset = load_dataset(task, root=mp_root)
    report = dataset.report
    assert report.n_input == report.n_kept + sum(report.removed.values())
    assert len(dataset) == report.n_kept >= 18
    assert report.removed.get("frame", 0) >= 1  # fixtures include frame-check rejections
    if task == "dielectric":
        assert report.removed.get("magnitude", 0) >= 1
    lookup = split_lookup(mp_splits()[task])
    assert all(r.material_id in lookup and r.split == lookup[r.material_id] for r in dataset)
    assert not any(i.record_id in lookup for i in report.issues)  # rejected ones are not in the benchmark
    systems = {"triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"}
    if task == "elastic":
        systems.remove("triclinic")  # the MP elastic set has no triclinic crystal
    assert {r.crystal_system for r in dataset} == systems
    assert_labels_exactly_symmetric(dataset)


def test_labels_stay_close_to_the_raw_dft_tensors(mp_root):
    import pandas as pd

    dataset = {r.material_id: r for r in load_dataset("elastic", root=mp_root)}
    frame = pd.read_csv(mp_root / "mp" / "raw" / "elastic_tensor.csv", comment="#")
    ttype = get_tensor_type("elastic")
    for row in frame.itertuples():
        if row.material_id in dataset:
            raw = np.array(json.loads(row.elastic_tensor_original))
            label = to_voigt(dataset[row.material_id].tensor, ttype)
            assert np.abs(label - raw).max() <= 1e-2 * np.abs(raw).max()


def test_processed_cache_is_reused_and_identical(mp_root):
    first = load_dataset("piezoelectric", root=mp_root)
    assert mp.processed_path("piezoelectric", 1e-3, mp_root).is_file()
    second = load_dataset("piezoelectric", root=mp_root)
    assert [r.material_id for r in first] == [r.material_id for r in second]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.tensor, b.tensor)
        assert a.structure == b.structure
    assert second.report.to_dict() == first.report.to_dict()


def test_piezo_structures_are_conventional_standard_cells(mp_root):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for r in load_dataset("piezoelectric", root=mp_root)[:5]:
        conv = SpacegroupAnalyzer(r.structure).get_conventional_standard_structure()
        assert len(conv) == len(r.structure)


def test_split_argument_and_unknown_values(mp_root):
    test = load_dataset("elastic", root=mp_root, split="test")
    assert all(r.split == "test" for r in test)
    with pytest.raises(GmtnetError, match="unknown split"):
        load_dataset("elastic", root=mp_root, split="holdout")
    with pytest.raises(GmtnetError, match="unknown data source"):
        load_dataset("elastic", source="oqmd")


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="gmtnet data fetch"):
        load_dataset("dielectric", root=tmp_path)


def test_bad_rows_are_reported_one_by_one_never_crash(mp_root):
    path = mp_root / "mp" / "raw" / "dielectric_constant.csv"
    text = path.read_text().rstrip("\n")
    good_poscar = "Cu1\n1.0\n3.6 0 0\n0 3.6 0\n0 0 3.6\nCu\n1\ndirect\n0 0 0 Cu\n"
    eye, four = "[[1,0,0],[0,1,0],[0,0,1]]", "[[4,0,0],[0,4,0],[0,0,4]]"
    rows = [
        ("bad-poscar", "not a poscar", eye, eye),
        ("bad-nan", good_poscar, "[[nan,0,0],[0,1,0],[0,0,1]]", eye),
        ("bad-shape", good_poscar, "[[1,0],[0,1]]", eye),
        ("bad-text", good_poscar, "not a tensor", eye),
        # a good total whose electronic part is broken: kept without parts, with a warning
        ("bad-part-text", good_poscar, four, "not a tensor"),
        ("bad-part-frame", good_poscar, four, "[[2,0.5,0],[0.5,2,0],[0,0,2]]"),
        ("bad-part-bound", good_poscar, four, "[[0.5,0,0],[0,0.5,0],[0,0,0.5]]"),  # electronic below 1
        ("bad-part-ionic", good_poscar, four, "[[5,0,0],[0,5,0],[0,0,5]]"),  # ionic = total - electronic < 0
        ("good-parts", good_poscar, four, "[[3,0,0],[0,3,0],[0,0,3]]"),
    ]
    import csv
    import io

    buf = io.StringIO()
    header = text.splitlines()[1].split(",")
    writer = csv.writer(buf)
    for mid, poscar, tensor, electronic in rows:
        values = {"material_id": mid, "poscar": poscar, "e_total": tensor, "e_electronic": electronic}
        writer.writerow([values[h] for h in header])
    path.write_text(text + "\n" + buf.getvalue())
    dataset = load_dataset("dielectric", root=mp_root)
    rules = {i.record_id: i.rule for i in dataset.report.issues}
    assert rules["bad-poscar"] == "unreadable structure"
    assert rules["bad-nan"] == "invalid tensor"
    assert rules["bad-shape"] == "invalid tensor"
    assert rules["bad-text"] == "invalid tensor"
    assert all("\n" not in i.message for i in dataset.report.issues)
    assert len(dataset) >= 18
    warned = {w.record_id: w.rule for w in dataset.report.warnings}
    assert warned["bad-part-text"] == "invalid tensor" and warned["bad-part-frame"] == "frame"
    assert warned["bad-part-bound"] == warned["bad-part-ionic"] == "bound"
    kept = {r.material_id: r for r in dataset}
    broken = [i for i in kept if i.startswith("bad-part")]
    assert len(broken) == 4 and all(kept[i].parts is None and np.allclose(kept[i].tensor, 4 * np.eye(3)) for i in broken)
    good = kept["good-parts"].parts
    assert np.array_equal(good["dielectric_electronic"], 3 * np.eye(3)) and np.array_equal(good["dielectric_ionic"], np.eye(3))


def test_split_rule_reproduces_the_shipped_benchmark_split():
    for task, splits in mp_splits().items():
        ids = [i for names in splits.values() for i in names]
        assert split_lookup(splits) == random_split(ids), task
    sizes = {t: tuple(len(mp_splits()[t][s]) for s in ("train", "val", "test")) for t in TASKS}
    assert sizes == {t: v[2] for t, v in EXPECTED_FULL.items()}


def test_frame_error_definition():
    t = np.diag([1.0, 2.0, 3.0])
    c4 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert frame_error(t, [np.eye(3), c4], get_tensor_type("dielectric")) == pytest.approx(1 / 3)
    assert frame_error(np.zeros((3, 3)), [c4], get_tensor_type("dielectric")) == 0.0


@pytest.mark.parametrize("task", TASKS)
def test_frame_error_equals_its_definition_with_rotate_tensor(task, rng):
    from gmtnet.tensors import random_orthogonal, rotate_tensor

    ttype = get_tensor_type(task)
    for _ in range(5):
        t = rng.normal(size=ttype.shape)
        rots = np.stack([random_orthogonal(rng) for _ in range(4)])
        direct = max(np.abs(rotate_tensor(t, r, ttype) - t).max() for r in rots) / np.abs(t).max()
        assert frame_error(t, rots, ttype) == pytest.approx(direct, rel=1e-12)


def _to_jarvis_entries(dataset, task):
    from pymatgen.io.jarvis import JarvisAtomsAdaptor

    ttype = get_tensor_type(task)
    entries = []
    for r in dataset:
        e = {"JARVIS_ID": f"JVASP-{r.material_id}", "atoms": JarvisAtomsAdaptor.get_atoms(r.structure).to_dict()}
        if task == "dielectric":
            e["dielectric"] = (0.25 * r.tensor).tolist()
            e["dielectric_ionic"] = (0.75 * r.tensor).tolist()
        elif task == "piezoelectric":
            e["piezoelectric_C_m2"] = to_voigt(r.tensor, ttype, VASP_VOIGT_ORDER).tolist()
        else:
            e["elastic_total_kbar"] = (10.0 * to_voigt(r.tensor, ttype, VASP_VOIGT_ORDER)).tolist()
        entries.append(e)
    return entries


@pytest.mark.parametrize("task", TASKS)
def test_gmtnet_jarvis_pickle_format_round_trips(mp_root, tmp_path, task):
    reference = load_dataset(task, root=mp_root)
    entries = _to_jarvis_entries(reference, task)
    entries.append({"JARVIS_ID": "JVASP-broken", "atoms": entries[0]["atoms"]})  # no tensor field
    path = tmp_path / "gmtnet.pkl"
    path.write_bytes(pickle.dumps(entries))
    with pytest.raises(GmtnetError, match="pickle, which can run code.*--trust-pickle"):
        load_dataset(task, source="jarvis", path=path)
    loaded = load_dataset(task, source="jarvis", path=path, trust_pickle=True)
    assert loaded.report.removed == {"invalid tensor": 1}
    by_id = {r.material_id: r for r in loaded}
    for r in reference:
        np.testing.assert_allclose(by_id[f"JVASP-{r.material_id}"].tensor, r.tensor, atol=1e-8)
    assert {r.split for r in loaded} <= {"train", "val", "test"}


def test_jarvis_pickle_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_dataset("elastic", source="jarvis", path=tmp_path / "absent.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(GmtnetError, match="not a readable pickle"):
        load_dataset("elastic", source="jarvis", path=bad, trust_pickle=True)


def test_user_json_file_with_every_structure_and_tensor_form(tmp_path, crystals):
    ttype = get_tensor_type("elastic")
    quartz, zno = crystals["alpha_quartz"], crystals["wurtzite_ZnO"]
    zno.to(filename=str(tmp_path / "zno.cif"))
    c_quartz = SymmetryConstraints.from_structure(quartz, ttype).project(np.random.default_rng(0).normal(size=(3,) * 4) + 50)
    c_zno = SymmetryConstraints.from_structure(zno, ttype).project(np.random.default_rng(1).normal(size=(3,) * 4) + 80)
    records = [
        {"id": "q-dict", "structure": quartz.as_dict(), "tensor": c_quartz.tolist(), "split": "train"},
        {"id": "q-cif", "structure": quartz.to(fmt="cif"), "tensor": to_voigt(c_quartz, ttype).tolist()},
        {"id": "z-poscar", "structure": zno.to(fmt="poscar"), "tensor": to_voigt(c_zno, ttype).tolist()},
        {"id": "z-path", "structure": "zno.cif", "tensor": c_zno.tolist()},
        {"id": "bad-shape", "structure": "zno.cif", "tensor": [[1, 2], [3, 4]]},
        {"id": "bad-file", "structure": "absent.cif", "tensor": c_zno.tolist()},
        {"id": "bad-frame", "structure": "zno.cif", "tensor": np.random.default_rng(2).normal(size=(6, 6)).tolist()},
    ]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(records))
    dataset = load_dataset("elastic", source="file", path=path)
    assert sorted(r.material_id for r in dataset) == ["q-cif", "q-dict", "z-path", "z-poscar"]
    assert dataset.report.removed == {"invalid tensor": 1, "unreadable structure": 1, "frame": 1}
    by_id = {r.material_id: r for r in dataset}
    assert by_id["q-dict"].split == "train"
    np.testing.assert_allclose(by_id["q-cif"].tensor, c_quartz, atol=1e-9)
    np.testing.assert_allclose(by_id["z-poscar"].tensor, c_zno, atol=1e-9)


def test_user_csv_file(tmp_path, crystals):
    import pandas as pd

    ttype = get_tensor_type("dielectric")
    rutile = crystals["rutile_TiO2"]
    eps = np.diag([7.0, 7.0, 9.0])
    pd.DataFrame([
        {"id": "rutile", "structure": rutile.to(fmt="cif"), "tensor": json.dumps(eps.tolist()), "split": "test"},
        {"id": "nan", "structure": rutile.to(fmt="cif"), "tensor": json.dumps([[float("nan")] * 3] * 3), "split": ""},
    ]).to_csv(tmp_path / "mine.csv", index=False)
    dataset = load_dataset("dielectric", source="file", path=tmp_path / "mine.csv")
    assert [r.material_id for r in dataset] == ["rutile"]
    np.testing.assert_allclose(dataset[0].tensor, eps, rtol=1e-14)
    assert dataset[0].tensor[0, 0] == dataset[0].tensor[1, 1] and dataset[0].tensor[0, 1] == 0.0
    assert dataset.report.removed == {"invalid tensor": 1}
    assert to_voigt(dataset[0].tensor, ttype).shape == (6,)


def test_user_file_errors(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(GmtnetError, match="unsupported data file type"):
        load_dataset("dielectric", source="file", path=tmp_path / "x.txt")
    (tmp_path / "x.json").write_text(json.dumps([{"structure": "a.cif"}]))
    with pytest.raises(GmtnetError, match="lacks the field"):
        load_dataset("dielectric", source="file", path=tmp_path / "x.json")
    with pytest.raises(GmtnetError, match="needs the path"):
        load_dataset("dielectric", source="file")


def test_summary_statistics(mp_root):
    dataset = load_dataset("dielectric", root=mp_root)
    s = summarize(dataset)
    norms = [np.linalg.norm(r.tensor) for r in dataset]
    assert s["n_records"] == len(dataset) == sum(s["splits"].values()) == sum(s["crystal_systems"].values())
    assert s["fnorm_mean"] == pytest.approx(np.mean(norms))
    assert s["fnorm_std"] == pytest.approx(np.std(norms, ddof=1))
    assert s["curation"]["n_input"] == dataset.report.n_input


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("GMTNET_OFFLINE") == "1", reason="GMTNET_OFFLINE=1")
def test_full_download_reproduces_the_benchmark_exactly(tmp_path):
    """Fetch matminer 0.3.9 through pip, curate all three sets, compare with the shipped splits."""
    mp.fetch(tmp_path)
    for task, (n, removed, sizes) in EXPECTED_FULL.items():
        dataset = load_dataset(task, root=tmp_path)
        assert len(dataset) == n
        assert dataset.report.removed == removed
        splits = mp_splits()[task]
        for name, size in zip(("train", "val", "test"), sizes):
            assert {r.material_id for r in dataset.split(name)} == set(splits[name])
            assert len(splits[name]) == size
        if task == "dielectric":
            assert_labels_exactly_symmetric(dataset[::10])
