"""Settings that check themselves: model hyperparameters, training settings and configuration
files are checked by type and range in one layer (gmtnet.utils.settings), and the inputs a
careful user expects to be named or accepted are."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import typing

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from gmtnet.errors import GmtnetError, StructureError
from gmtnet.model import build_model, load_model, save_model
from gmtnet.model.baselines import BASELINE_RULES, BaselineConfig
from gmtnet.model.config import MODEL_RULES, ModelConfig
from gmtnet.training.config import TRAIN_RULES, TrainConfig, read_config_file
from gmtnet.utils.settings import MAX_DEPTH, SettingsError, check_settings, depth, field_names

TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8)
NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])

# values of the wrong type for a setting of each type
WRONG = {"bool": ["false", 1, None, 0.0], "int": ["3", 2.5, True, None, float("nan")],
         "float": ["x", True, float("nan"), float("inf"), None], "str": [3, None, ["knn"]]}


def _kind(cls, name) -> str | None:
    default = getattr(cls(), name)
    for kind, types in (("bool", (bool,)), ("int", (int,)), ("float", (float,)), ("str", (str,))):
        if type(default) in types:
            return kind
    return None


def _typed_fields(cls):
    return [(name, _kind(cls, name)) for name in field_names(cls) if _kind(cls, name)]


@pytest.mark.parametrize("cls", [ModelConfig, BaselineConfig, TrainConfig])
def test_every_setting_refuses_a_value_of_the_wrong_type_by_name(cls):
    for name, kind in _typed_fields(cls):
        for bad in WRONG[kind]:
            if kind == "int" and name in ("limit", "val_limit", "init_member") and bad is None:
                continue  # optional settings take None
            with pytest.raises(SettingsError, match=rf"^{name} must be"):
                cls(**{name: bad})


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_values_inside_the_rules_are_taken_and_outside_refused(data):
    for cls, rules in ((ModelConfig, MODEL_RULES), (BaselineConfig, BASELINE_RULES), (TrainConfig, TRAIN_RULES)):
        name = data.draw(st.sampled_from(sorted(n for n, r in rules.items() if r.choices is None)))
        rule = rules[name]
        hint = typing.get_type_hints(cls)[name]
        whole = hint is int or int in typing.get_args(hint)
        low = rule.low if rule.low is not None else -1e6
        high = rule.high if rule.high is not None else 1e6
        if whole:
            inside = data.draw(st.integers(int(np.ceil(low)) + (1 if rule.low_open else 0), int(min(high, 1e6))))
            outside = data.draw(st.sampled_from([v for v in (int(np.ceil(low)) - 1 if rule.low is not None else None,
                                                             int(high) + 1 if rule.high is not None else None)
                                                 if v is not None]))
        else:
            inside = data.draw(st.floats(low, min(high, 1e6), exclude_min=rule.low_open, allow_nan=False))
            outside = data.draw(st.sampled_from([v for v in (low - 1.0 if rule.low is not None else None,
                                                             high + 1.0 if rule.high is not None else None)
                                                 if v is not None]))
        if any(typing.get_origin(h) is list for h in (hint, *typing.get_args(hint))):
            inside, outside = [inside], [inside, outside]  # a list setting: the rule holds for each item
        check_settings(cls, {name: inside}, "here", rules)
        with pytest.raises(SettingsError, match=rf"^here: {name} must be"):
            check_settings(cls, {name: outside}, "here", rules)


def test_unknown_settings_and_deep_nesting_are_named():
    with pytest.raises(SettingsError, match=r"^f.toml: unknown setting\(s\) warp_drive"):
        check_settings(ModelConfig, {"warp_drive": 1, "k": 16}, "f.toml")
    deep = []
    for _ in range(50):
        deep = [deep]
    assert depth(deep) == MAX_DEPTH + 1  # counted no further than the limit, without recursion
    with pytest.raises(SettingsError, match="nested deeper"):
        ModelConfig(extra={"a": deep})
    with pytest.raises(SettingsError, match="rbf_min must be below rbf_max"):
        ModelConfig(rbf_min=1.0, rbf_max=0.0)
    with pytest.raises(SettingsError, match="model_overrides: output_scale is set by the run itself"):
        TrainConfig(model_overrides={"output_scale": 3.0})


def test_model_files_are_checked_when_loaded(tmp_path):
    model = build_model("dielectric", **TINY)
    path = save_model(model, tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    for change, message in (({"k": 0}, "k must be"), ({"symprec": float("nan")}, "symprec must be"),
                            ({"parts": "yes"}, "parts must be true or false"), ({"dtype": "float16"}, "dtype must be")):
        torch.save(dict(blob, config={**blob["config"], **change}), tmp_path / "bad.pt")
        with pytest.raises(GmtnetError, match=rf"bad.pt: invalid hyperparameters \({message}"):
            load_model(tmp_path / "bad.pt")
    state = dict(blob["state_dict"])
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone().fill_(float("inf"))
    torch.save(dict(blob, state_dict=state), tmp_path / "inf.pt")
    with pytest.raises(GmtnetError, match=f"inf.pt: weight {name} holds NaN or infinite values"):
        load_model(tmp_path / "inf.pt")


def test_config_files_are_checked_and_name_the_file(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('task = "dielectric"\nepochs = 3\n[model_overrides]\nk = 12\ngraph = "knn"\n')
    assert read_config_file(good) == {"task": "dielectric", "epochs": 3, "model_overrides": {"k": 12, "graph": "knn"}}
    cases = {'epochs = 0': "epochs must be an integer within 1", 'lr = "fast"': "lr must be a finite number",
             'compile = 1': "compile must be true or false", '[model_overrides]\nk = 0': "model_overrides: k must be",
             '[model_overrides]\nnode_dim = 1e12': "model_overrides: node_dim must be an integer"}
    for text, message in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(text + "\n")
        with pytest.raises(SettingsError, match=rf"^{path}: {message}"):
            read_config_file(path)
    huge = tmp_path / "huge.json"
    huge.write_text("{" + " " * 2_000_000 + "}")
    with pytest.raises(SettingsError, match="no configuration"):
        read_config_file(huge)


# ---- outputs ---------------------------------------------------------------------------------
def _gmtnet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gmtnet", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env={**os.environ, "GMTNET_DATA": str(cwd / "data")})


@pytest.fixture(scope="module")
def model_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    NACL.to(filename=str(root / "good.cif"))
    save_model(build_model("dielectric", **TINY), root / "m.pt")
    return root


def test_a_whole_output_is_locked_and_replaced_only_when_asked(model_world):
    import fcntl

    out = model_world / "o.json"
    args = ["predict", "good.cif", "--model", "dielectric=m.pt", "--task", "dielectric", "--format", "json", "--out", "o.json"]
    done = _gmtnet(*args, cwd=model_world)
    assert done.returncode == 0 and json.loads(out.read_text())[0]["source"] == "good.cif"
    os.chmod(out, 0o600)
    out.write_text("[]\n")
    with open(out) as handle:  # another process is writing it
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        held = _gmtnet(*args, "--overwrite", cwd=model_world)
    assert held.returncode == 1 and "being written by another gmtnet process" in held.stderr
    assert out.read_text() == "[]\n"
    again = _gmtnet(*args, "--overwrite", cwd=model_world)
    assert again.returncode == 0 and json.loads(out.read_text())[0]["source"] == "good.cif"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # a replaced file keeps its mode
    failed = _gmtnet("predict", "absent.cif", "--model", "dielectric=m.pt", "--task", "dielectric", "--format", "json",
                     "--out", "new.json", cwd=model_world)
    assert failed.returncode == 1 and not (model_world / "new.json").exists()  # no empty file left behind


def test_calibrate_keeps_the_mode_of_the_file_it_replaces(mp_root, tmp_path, monkeypatch):
    from gmtnet.cli.app import main

    monkeypatch.setenv("GMTNET_DATA", str(mp_root))
    path = save_model(build_model("dielectric", **TINY), tmp_path / "m.pt")
    os.chmod(path, 0o600)
    with pytest.raises(SystemExit) as exit_info:
        main(["model", "calibrate", str(path), "--out", str(path)])
    assert exit_info.value.code in (0, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ---- data and structures ---------------------------------------------------------------------
def _records(n):
    return [{"id": f"x{i % 3}", "structure": NACL.as_dict(), "tensor": ((4.0 + i) * np.eye(3)).tolist()} for i in range(n)]


def test_a_data_file_with_a_repeated_id_keeps_the_first(tmp_path):
    from gmtnet.data import load_dataset

    path = tmp_path / "d.json"
    path.write_text(json.dumps(_records(5)))
    data = load_dataset("dielectric", source="file", path=path)
    assert [r.material_id for r in data] == ["x0", "x1", "x2"]
    dupes = [i for i in data.report.issues if i.rule == "duplicate id"]
    assert [(i.record_id, i.message.split(";")[0]) for i in dupes] == [("x0", "record 3 has the id of record 0"),
                                                                        ("x1", "record 4 has the id of record 1")]


def test_training_on_a_data_file(tmp_path):
    from gmtnet.training import train

    rows = [{"id": f"c{i}", "structure": Structure(Lattice.cubic(5.4 + 0.1 * i), ["Na", "Cl"],
                                                    [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict(),
             "tensor": ((4.0 + i) * np.eye(3)).tolist(), "split": "train" if i < 6 else "val"} for i in range(8)]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(rows))
    result = train(TrainConfig(task="dielectric", source="file", data_path=str(path), epochs=1, batch_size=3,
                               out=str(tmp_path / "run"), model_overrides=dict(TINY)), progress=False,
                   cache_dir=tmp_path / "cache")
    assert np.isfinite(result["best_val_fnorm"]) and load_model(result["best"]).output_names == ("dielectric",)


def test_predict_takes_any_iterable_text_and_names_a_cell_without_volume():
    import gmtnet
    from ase import Atoms

    from gmtnet.prediction import Predictor

    models = {"dielectric": build_model("dielectric", **TINY).eval()}
    one = gmtnet.predict(NACL, task="dielectric", models=models)
    array = np.empty(2, dtype=object)
    array[:] = [NACL, NACL]
    for given_ in ((s for s in [NACL, NACL]), array, {0: NACL, 1: NACL}.values()):
        np.testing.assert_allclose(gmtnet.predict(given_, task="dielectric", models=models), np.stack([one[0]] * 2),
                                   rtol=1e-6)  # a batch of two sums in another order than one
    text = NACL.to(fmt="cif")
    np.testing.assert_allclose(gmtnet.predict(text, task="dielectric", models=models), one, atol=1e-5)
    result = Predictor("dielectric", models).predict(["data_x\n_cell_length_a 3\n"])[0]
    assert result.source == "structure 0" and "data_x" not in result.error  # text is not echoed as a path
    with pytest.raises(StructureError, match="cell has no volume"):
        gmtnet.predict(Atoms("NaCl", positions=[[0, 0, 0], [1, 1, 1]], pbc=True), task="dielectric", models=models)
