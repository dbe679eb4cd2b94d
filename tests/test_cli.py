"""The gmtnet command: output of the data and symmetry commands, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gmtnet.cli.app import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("gmtnet ")


def test_data_info_table_and_json(mp_root, capsys):
    code, out, _ = run(["data", "info", "dielectric", "--root", str(mp_root)], capsys)
    assert code == 0
    assert "dielectric (mp):" in out and "crystal system" in out and "removed by rule" in out
    code, out, _ = run(["data", "info", "piezo", "--root", str(mp_root), "--json", "--issues"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["task"] == "piezoelectric"
    assert len(summary["issues"]) == sum(summary["curation"]["removed"].values())


def test_data_info_of_mp2026_lists_removals_and_warnings(mp2026_fixtures, tmp_path, capsys):
    code, out, err = run(["data", "info", "elastic", "--source", "mp2026", "--root", str(tmp_path), "--issues"], capsys)
    assert code == 0 and "curating" not in err  # progress bars only on a terminal
    assert "elastic (mp2026):" in out and "not positive definite" in out and "kept with a warning" in out
    removed = sum(1 for s in mp2026_fixtures["elastic"].values() if s.startswith("removed"))
    assert out.count("  removed mp-") == removed and "  kept mp-862752: [not positive definite]" in out
    code, out, _ = run(["data", "info", "piezoelectric", "--source", "mp2026", "--root", str(tmp_path), "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["source"] == "mp2026" and summary["curation"]["removed"] == {"frame": 2}


@pytest.mark.parametrize("argv,message", [
    (["data", "info", "magnetic"], "unknown task"),
    (["data", "info", "dielectric", "--root", "/nonexistent/gmtnet"], "gmtnet data fetch"),
    (["data", "info", "dielectric", "--source", "file"], "needs the path"),
    (["data", "info", "dielectric", "--source", "mp2026"], "elastic and piezoelectric tensors"),
    (["symmetry", "/nonexistent/x.cif"], "No such file or directory"),
])
def test_errors_are_one_line_with_nonzero_exit(argv, message, capsys):
    code, _, err = run(argv, capsys)
    assert code == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_symmetry_command_prints_forced_patterns(tmp_path, crystals, capsys):
    path = tmp_path / "zno.cif"
    crystals["wurtzite_ZnO"].to(filename=str(path))
    code, out, _ = run(["symmetry", str(path)], capsys)
    assert code == 0
    assert "P6_3mc (186)" in out and "6mm" in out
    assert "piezoelectric: 3 independent" in out and "e15 = e24" in out
    assert "elastic: 5 independent" in out
    code, with_spglib, _ = run(["symmetry", str(path), "--backend", "spglib"], capsys)  # default: moyopy
    assert code == 0 and with_spglib == out


def test_symmetry_command_rejects_bad_structures(tmp_path, capsys):
    path = tmp_path / "POSCAR"
    path.write_text("overlap\n1.0\n4 0 0\n0 4 0\n0 0 4\nNa Cl\n1 1\ndirect\n0 0 0\n0.01 0 0\n")
    code, _, err = run(["symmetry", str(path)], capsys)
    assert code == 1 and "overlapping atoms" in err


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "gmtnet.cli.app", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "data" in done.stdout


def test_a_cache_that_cannot_be_written_is_one_error_line(mp2026_fixtures, tmp_path, capsys):
    """An operating-system refusal (here: a file where the cache folder should be; a cache owned
    by another user is the same kind of error) is one line naming the path, not a traceback."""
    (tmp_path / "a_file").write_text("x")
    code, _, err = run(["data", "info", "piezoelectric", "--source", "mp2026", "--root", str(tmp_path / "a_file" / "cache")],
                       capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and "Not a directory" in err


def test_model_info_names_the_graph_and_the_symmetrization(capsys):
    code, out, _ = run(["model", "info", "piezo", "--preset", "fast"], capsys)
    assert code == 0 and "GMTNet for piezoelectric" in out
    assert "graph smooth (envelope band 0.1 r, soft-radius width 0.05 A), k = 16" in out
    assert "structures symmetrized first: yes" in out
    code, out, _ = run(["model", "info", "elastic", "--json"], capsys)
    config = json.loads(out)["config"]
    assert code == 0 and config["graph"] == "smooth" and config["refine_structure"] is True
