"""Hostile and careless input, through the installed command in a subprocess and through the API.

Every refusal through the CLI must be: exit status 1, exactly one line on standard error starting
with ``error:`` and naming the problem, no traceback, no file outside the run's own output
changed, an existing output left intact. Nothing a user did not write is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gmtnet.model import build_model, save_model

TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)
TASKS = ("dielectric", "piezoelectric", "elastic")


class Marker:
    """Unpickling this creates the file ``path``: the proof that a pickle ran code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def gmtnet(*args, cwd: Path, env_extra: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "GMTNET_DATA": str(cwd / "data"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "gmtnet", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (by relative path), except gmtnet's cache of e3nn's
    change-of-basis matrices (``$GMTNET_DATA/bases``: deterministic arrays that building any
    model may write, checked when read back, never a user's file)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
            and not p.relative_to(root).as_posix().startswith("data/bases/")}


def assert_refused(done: subprocess.CompletedProcess, message: str) -> None:
    err = done.stderr
    assert done.returncode == 1, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert message in lines[0], lines[0]


def _poscar(lattice: float, species: str, counts: str, coords: list[str]) -> str:
    return f"x\n1.0\n{lattice} 0 0\n0 {lattice} 0\n0 0 {lattice}\n{species}\n{counts}\nDirect\n" + "\n".join(coords) + "\n"


CIF_TWO_ON_ONE_SITE = textwrap.dedent("""\
    data_x
    _cell_length_a 4.0
    _cell_length_b 4.0
    _cell_length_c 4.0
    _cell_angle_alpha 90
    _cell_angle_beta 90
    _cell_angle_gamma 90
    _symmetry_space_group_name_H-M 'P 1'
    loop_
    _symmetry_equiv_pos_as_xyz
     'x, y, z'
    loop_
    _atom_site_label
    _atom_site_type_symbol
    _atom_site_fract_x
    _atom_site_fract_y
    _atom_site_fract_z
    _atom_site_occupancy
    Na1 Na 0.0 0.0 0.0 1
    K1 K 0.0 0.0 0.0 1
    Cl1 Cl 0.5 0.5 0.5 1
    """)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with good and bad inputs, tiny model files and a finished tiny training run."""
    root = tmp_path_factory.mktemp("world")
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nacl.to(filename=str(root / "good.cif"))
    (root / "two_on_one_site.cif").write_text(CIF_TWO_ON_ONE_SITE)
    (root / "negative_length.cif").write_text(CIF_TWO_ON_ONE_SITE.replace("_cell_length_a 4.0", "_cell_length_a -4.0")
                                              .replace("K1 K 0.0 0.0 0.0 1\n", ""))
    (root / "POSCAR_extra_lines").write_text(_poscar(5.64, "Na Cl", "1 1", ["0 0 0", "0.5 0.5 0.5", "0.5 0 0"]))
    (root / "POSCAR_300A").write_text(_poscar(300.0, "Na Cl", "4 4", [f"{x} {y} {z}" for x, y, z in
                                                                       np.random.default_rng(0).uniform(0, 1, (8, 3))]))
    (root / "POSCAR_54km").write_text(_poscar(5.4e7, "Na Cl", "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    models = {t: build_model(t, **TINY, output_scale=1.0, seed=1) for t in TASKS}
    for t, m in models.items():
        save_model(m, root / f"{t}.pt")
    blob = torch.load(root / "dielectric.pt", weights_only=True)
    broken = dict(blob, state_dict={k: v for i, (k, v) in enumerate(blob["state_dict"].items()) if i})
    torch.save(broken, root / "missing_weight.pt")
    torch.save(dict(blob, architecture="transformer"), root / "unknown_architecture.pt")
    torch.save(dict(blob, config={**blob["config"], "warp_drive": 9}), root / "unknown_key.pt")
    for name, change in (("k_zero", {"k": 0}), ("k_negative", {"k": -3}), ("huge_width", {"node_dim": 10 ** 12})):
        torch.save(dict(blob, config={**blob["config"], **change}), root / f"{name}.pt")
    torch.save(dict(blob, state_dict={k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v)
                                      for k, v in blob["state_dict"].items()}), root / "nan_weights.pt")
    member = dict(blob, config={**blob["config"], "symprec": float("nan")})
    torch.save(dict(blob, architecture="ensemble", members=[member, member]), root / "nan_symprec_ensemble.pt")
    settings = {"task": "dielectric", "epochs": 1, "out": "run-x"}
    (root / "overrides_5.toml").write_text('task = "dielectric"\nout = "run-x"\nmodel_overrides = 5\n')
    (root / "overrides_unknown.toml").write_text('task = "dielectric"\nout = "run-x"\n[model_overrides]\nwarp = 9\n')
    (root / "nested.json").write_text(json.dumps({**settings, "model_overrides": {}})[:-1]
                                      + ', "extra": ' + "[" * 20000 + "]" * 20000 + "}")
    (root / "nested.toml").write_text('task = "dielectric"\nseed = ' + "[" * 20000 + "]" * 20000 + "\n")
    (root / "group_average_string.toml").write_text('task = "dielectric"\nout = "run-x"\ngroup_average = "false"\n')
    (root / "seed_string.json").write_text(json.dumps({**settings, "seed": "x"}))
    (root / "nan_coordinate.cif").write_text(CIF_TWO_ON_ONE_SITE.replace("K1 K 0.0 0.0 0.0 1\n", "")
                                             .replace("Cl1 Cl 0.5 0.5", "Cl1 Cl nan 0.5"))
    (root / "site_twice.cif").write_text(CIF_TWO_ON_ONE_SITE.replace("K1 K 0.0 0.0 0.0", "Na2 Na 0.0 0.0 0.0"))
    (root / "poscar_named.cif").write_text(_poscar(5.64, "Na Cl", "1 1", ["0 0 0", "0.5 0.5 0.5"]))
    (root / "existing.json").write_text("[]\n")
    (root / "a_file").write_text("not a folder\n")
    (root / "foreign.json").write_text('{"mine": true}')  # one line, no newline: not gmtnet's
    (root / "foreign.csv").write_text("name,value\nalpha,1\nbeta,2")
    with open(root / "evil.pkl", "wb") as handle:
        pickle.dump([Marker(root / "PWNED-jarvis")], handle)
    return root


def _run_folder(world: Path, name: str, epochs: int) -> Path:
    """A finished tiny dielectric run on the committed fixtures (train's checkpoint format)."""
    from gmtnet.training import TrainConfig, train

    data = world / "data"
    (data / "mp").mkdir(parents=True, exist_ok=True)
    fixtures = Path(__file__).parent / "fixtures" / "mp" / "raw"
    if not (data / "mp" / "raw").exists():
        import shutil

        shutil.copytree(fixtures, data / "mp" / "raw")
    out = world / name
    train(TrainConfig(task="dielectric", epochs=epochs, batch_size=8, limit=16, data_root=str(data), out=str(out),
                      model_overrides=dict(TINY), threads=1), progress=False, cache_dir=world / "cache")
    return out


# ---- the battery: one refusal each -------------------------------------------------------------
BATTERY = [
    ("symprec-negative", ["symmetry", "--symprec", "-1", "good.cif"], "symprec must be"),
    ("symprec-nan", ["symmetry", "--symprec", "nan", "good.cif"], "symprec must be"),
    ("data-info-symprec", ["data", "info", "elastic", "--source", "mp2026", "--symprec", "-0.5"], "symprec must be"),
    ("cell-54km", ["symmetry", "POSCAR_54km"], "lattice vector"),
    ("cell-300A-8-atoms", ["symmetry", "POSCAR_300A"], "per atom"),
    ("poscar-counts", ["symmetry", "POSCAR_extra_lines"], "counts line lists 2 atoms"),
    ("cif-two-elements-one-site", ["symmetry", "two_on_one_site.cif"], "share one site"),
    ("cif-negative-length", ["symmetry", "negative_length.cif"], "cell length a = -4.0"),
    ("missing-file", ["symmetry", "absent.cif"], "No such file or directory"),
    ("usage-unknown-option", ["predict", "good.cif", "--bogus"], "No such option"),
    ("out-is-a-folder", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                         "--out", "."], "is a folder"),
    ("out-under-a-file", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                          "--out", "a_file/out.json"], "a file is in the way"),
    ("plot-onto-a-file", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                          "--plot", "a_file"], "is a file, not a folder"),
    ("evaluate-out-under-a-file", ["evaluate", "dielectric.pt", "--out", "a_file/report"], "a file is in the way"),
    ("model-of-another-task", ["predict", "good.cif", "--model", "dielectric=elastic.pt"],
     "predicts elastic tensors, not dielectric"),
    ("model-not-a-model", ["predict", "good.cif", "--model", "dielectric=good.cif"], "not a gmtnet model file"),
    ("model-missing-weight", ["predict", "good.cif", "--model", "dielectric=missing_weight.pt"], "weights do not fit"),
    ("model-unknown-architecture", ["predict", "good.cif", "--model", "dielectric=unknown_architecture.pt"],
     "unknown architecture 'transformer'"),
    ("model-unknown-key", ["predict", "good.cif", "--model", "dielectric=unknown_key.pt"],
     "unknown hyperparameter(s) warp_drive"),
    ("train-epochs-0", ["train", "--task", "dielectric", "--epochs", "0", "--out", "run-x"], "epochs must be"),
    ("train-limit-negative", ["train", "--task", "dielectric", "--limit", "-5", "--out", "run-x"], "limit must be"),
    ("train-batch-size-1", ["train", "--task", "dielectric", "--batch-size", "1", "--out", "run-x"], "batch_size must be"),
    ("train-out-is-a-file", ["train", "--task", "dielectric", "--out", "a_file"], "not a folder"),
    ("train-unknown-graph", ["train", "--task", "dielectric", "--graph", "mesh", "--out", "run-x"], "unknown graph 'mesh'"),
    ("resume-foreign-jsonl", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                              "--format", "jsonl", "--out", "foreign.json", "--resume"], "left untouched"),
    ("resume-foreign-csv", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                            "--format", "csv", "--out", "foreign.csv", "--resume"], "left untouched"),
    ("jarvis-pickle-not-trusted", ["data", "info", "elastic", "--source", "jarvis", "--path", "evil.pkl"],
     "--trust-pickle"),
    # settings of model files, checked by type and range when the file is loaded
    ("model-k-zero", ["predict", "good.cif", "--model", "dielectric=k_zero.pt"], "k_zero.pt: invalid hyperparameters (k must"),
    ("model-k-negative", ["predict", "good.cif", "--model", "dielectric=k_negative.pt"], "(k must be an integer within 1"),
    ("model-huge-width", ["predict", "good.cif", "--model", "dielectric=huge_width.pt"], "(node_dim must be"),
    ("model-nan-weights", ["predict", "good.cif", "--model", "dielectric=nan_weights.pt"],
     "nan_weights.pt: weight atom_embedding.weight holds NaN"),
    ("ensemble-nan-symprec", ["predict", "good.cif", "--model", "dielectric=nan_symprec_ensemble.pt"],
     "(symprec must be a finite number, got nan)"),
    # settings of --config files
    ("config-overrides-not-a-table", ["train", "--config", "overrides_5.toml"], "model_overrides must be a table, got 5"),
    ("config-unknown-override", ["train", "--config", "overrides_unknown.toml"], "unknown setting(s) warp"),
    ("config-nested-json", ["train", "--config", "nested.json"], "nested"),
    ("config-nested-toml", ["train", "--config", "nested.toml"], "nested"),
    ("config-bool-as-string", ["train", "--config", "group_average_string.toml"],
     "group_average_string.toml: group_average must be true or false, got 'false'"),
    ("config-seed-not-a-number", ["train", "--config", "seed_string.json"], "seed_string.json: seed must be an integer"),
    ("train-file-without-path", ["train", "--task", "dielectric", "--source", "file", "--out", "run-x"],
     "source file needs the data file"),
    # outputs are never replaced by surprise
    ("predict-json-onto-existing", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task", "dielectric",
                                    "--format", "json", "--out", "existing.json"], "add --overwrite"),
    ("predict-table-onto-existing", ["predict", "good.cif", "--model", "dielectric=dielectric.pt", "--task",
                                     "dielectric", "--out", "existing.json"], "add --overwrite"),
    # structure files whose problem must be named
    ("cif-nan-coordinate", ["symmetry", "nan_coordinate.cif"], "_atom_site_fract_x = nan is not a number"),
    ("cif-site-twice", ["symmetry", "site_twice.cif"], "atom sites Na1 and Na2 are the same Na atom"),
    ("cif-that-is-a-poscar", ["symmetry", "poscar_named.cif"], "not a CIF file: no data_ block (it reads as a POSCAR"),
]
if not torch.cuda.is_available():
    BATTERY.append(("train-cuda-without-cuda", ["train", "--task", "dielectric", "--device", "cuda", "--out", "run-x"],
                    "no CUDA device"))


@pytest.mark.parametrize("argv,message", [case[1:] for case in BATTERY], ids=[case[0] for case in BATTERY])
def test_hostile_input_is_refused_with_one_line_and_nothing_changed(world, argv, message):
    before = snapshot(world)
    done = gmtnet(*argv, cwd=world)
    assert_refused(done, message)
    assert snapshot(world) == before
    assert not list(world.glob("PWNED*")) and not (world / "run-x").exists()


# ---- training runs -----------------------------------------------------------------------------
def test_resumed_training_keeps_its_configuration_and_loads_no_code(world):
    out = _run_folder(world, "run-resume", epochs=1)
    before = snapshot(out)
    assert_refused(gmtnet("train", "--resume", "--out", out, "--lr", "0.5", cwd=world), "contradicts the run")
    assert snapshot(out) == before
    done = gmtnet("train", "--resume", "--out", out, "--task", "dielectric", cwd=world)  # no --epochs: the run's 1
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads((out / "log.json").read_text())) == 1  # not 200
    last = out / "last.pt"
    state = torch.load(last, weights_only=True)
    with open(last, "wb") as handle:  # a checkpoint that runs code when unpickled
        pickle.dump({**state, "history": Marker(world / "PWNED-checkpoint")}, handle)
    assert_refused(gmtnet("train", "--resume", "--out", out, "--epochs", "2", cwd=world),
                   "not a readable training checkpoint")
    assert not (world / "PWNED-checkpoint").exists()
    last.write_bytes(last.read_bytes()[:100])  # truncated
    assert_refused(gmtnet("train", "--resume", "--out", out, "--epochs", "2", cwd=world),
                   "not a readable training checkpoint")
    assert_refused(gmtnet("train", "--task", "dielectric", "--out", out, cwd=world), "holds a run already")


def test_merge_resumed_config_takes_execution_settings_and_refuses_others():
    from gmtnet.errors import GmtnetError
    from gmtnet.training import TrainConfig
    from gmtnet.training.trainer import merge_resumed_config

    saved = TrainConfig(task="dielectric", epochs=6, lr=1e-3, out="a")
    merged = merge_resumed_config(saved, TrainConfig(task="dielectric", epochs=10, lr=1e-3, threads=2, out="b"), 3)
    assert (merged.epochs, merged.threads, merged.out, merged.lr) == (10, 2, "b", 1e-3)
    with pytest.raises(GmtnetError, match="lr 0.5 contradicts"):
        merge_resumed_config(saved, TrainConfig(task="dielectric", epochs=6, lr=0.5), 3)
    with pytest.raises(GmtnetError, match="trained 3 epochs already"):
        merge_resumed_config(saved, TrainConfig(task="dielectric", epochs=2), 3)


# ---- trusted files: none -----------------------------------------------------------------------
def test_graph_cache_holds_arrays_and_never_runs_code(tmp_path):
    from gmtnet.graph import build_graph
    from gmtnet.graph.storage import GraphFileError, load_graphs, save_graphs
    from gmtnet.symmetry import analyze_symmetry

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    zno = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                    [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    graphs = [build_graph(nacl, symmetry=analyze_symmetry(nacl)), build_graph(zno),
              build_graph(zno, symmetry=analyze_symmetry(zno))]
    save_graphs(tmp_path / "g.npz", graphs)
    loaded = load_graphs(tmp_path / "g.npz")
    for a, b in zip(graphs, loaded):
        for name in ("atomic_numbers", "edge_src", "edge_dst", "edge_vec", "edge_shift", "lattice", "rotations",
                     "orbit_rep", "orbit_rotation", "site_rotations", "edge_multiplicity"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or (np.array_equal(x, y) and np.asarray(x).dtype == y.dtype), name
        assert a.spacegroup_number == b.spacegroup_number and type(a.spacegroup_number) is type(b.spacegroup_number)
    assert [g.spacegroup_number for g in loaded] == [225, None, 186]
    evil = tmp_path / "evil.npz"
    np.savez(evil, format=np.array("gmtnet-graphs-1"), count=np.array(1),
             payload=np.array([Marker(tmp_path / "PWNED-graphs")], dtype=object))
    with pytest.raises(GraphFileError):
        load_graphs(evil)
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps(Marker(tmp_path / "PWNED-graphs")))
    with pytest.raises(GraphFileError):
        load_graphs(tmp_path / "pickled.npz")
    assert not (tmp_path / "PWNED-graphs").exists()


def test_cache_files_get_the_permissions_of_any_new_file(tmp_path):
    from gmtnet.utils.io import atomic_write_bytes

    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "shared.bin", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ---- outputs: locked, checked, never half-lost --------------------------------------------------
def test_a_second_writer_of_the_same_stream_is_refused(tmp_path):
    from gmtnet.errors import GmtnetError
    from gmtnet.prediction.stream_output import ResultWriter

    path = tmp_path / "out.jsonl"
    first = ResultWriter(path, "jsonl", ("dielectric",))
    try:
        with pytest.raises(GmtnetError, match="being written by another gmtnet process"):
            ResultWriter(path, "jsonl", ("dielectric",), resume=True)
    finally:
        first.close()
    second = ResultWriter(path, "jsonl", ("dielectric",), resume=True)  # free again
    second.close()


def test_resume_checks_the_whole_file_before_cutting_a_partial_line(tmp_path):
    from gmtnet.errors import GmtnetError
    from gmtnet.prediction.stream_output import ResultWriter

    path = tmp_path / "out.jsonl"
    path.write_text('{"source": "a.cif", "error": null}\n{"not": "ours"}\n{"source": "b.ci')
    before = path.read_bytes()
    with pytest.raises(GmtnetError, match="line 2 is not a prediction row"):
        ResultWriter(path, "jsonl", ("dielectric",), resume=True)
    assert path.read_bytes() == before
    path.write_text('{"source": "a.cif", "error": null}\n{"source": "b.ci')
    writer = ResultWriter(path, "jsonl", ("dielectric",), resume=True)
    writer.close()
    assert writer.done == {"a.cif"} and path.read_text() == '{"source": "a.cif", "error": null}\n'


def test_dataloader_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of a process iterating a DataLoader with gmtnet's worker start: the worker goes too."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""\
        import sys, time
        from torch.utils.data import DataLoader
        from gmtnet.prediction.predictor import _single_thread_worker

        class Slow:
            def __len__(self):
                return 10_000
            def __getitem__(self, i):
                time.sleep(0.05)
                return i

        for _ in DataLoader(Slow(), batch_size=1, num_workers=1, worker_init_fn=_single_thread_worker):
            print("item", flush=True)
        """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().startswith("item")  # the worker runs
        workers = _children(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.time() + 20
        alive = list(workers)
        while alive and time.time() < deadline:
            alive = [w for w in alive if Path(f"/proc/{w}").exists() and "Z" not in _state(w)]
            time.sleep(0.2)
        assert workers and not alive, f"workers {alive} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc/*/stat, field 4)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


# ---- batches: a bad item is one error row, never the end of the batch ---------------------------
def test_batches_report_bad_files_and_go_on(world):
    folder = world / "batch"
    folder.mkdir(exist_ok=True)
    (folder / "good.cif").write_text((world / "good.cif").read_text())
    loop = folder / "loop.cif"
    if not loop.is_symlink():
        loop.symlink_to(folder / "loop.cif")
    dangling = folder / "gone.cif"
    if not dangling.is_symlink():
        dangling.symlink_to(folder / "nowhere.cif")
    done = gmtnet("symmetry", folder, "absent.cif", cwd=world)
    assert done.returncode == 0 and "good.cif: NaCl" in done.stdout and "Traceback" not in done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert any("loop.cif" in e and "symbolic links" in e for e in errors)
    assert any("gone.cif" in e for e in errors) and any("absent.cif" in e for e in errors)
    done = gmtnet("predict", folder, "--model", "dielectric=dielectric.pt", "--task", "dielectric", "--format", "json",
                  cwd=world)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {Path(r["source"]).name: r["error"] for r in json.loads(done.stdout)}
    assert rows["good.cif"] is None and rows["loop.cif"] and rows["gone.cif"]
    assert_refused(gmtnet("symmetry", "absent.cif", cwd=world), "absent.cif: No such file or directory")


def test_a_memory_error_costs_only_its_own_structure(monkeypatch):
    from gmtnet.prediction import Predictor

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    huge = nacl.copy()
    predictor = Predictor("dielectric", {"dielectric": build_model("dielectric", **TINY, seed=1).eval()})
    load = predictor._load

    def exhausting(item):
        if item is huge:
            raise MemoryError
        return load(item)

    monkeypatch.setattr(predictor, "_load", exhausting)
    results = predictor.predict([nacl, huge, nacl])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == "out of memory for this structure"
