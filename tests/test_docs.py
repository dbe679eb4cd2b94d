"""The README is the user's reference: small, about the software, and its pointers lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_is_a_reference_under_20_kb():
    assert README.stat().st_size < 20_000


def test_readme_speaks_of_the_software_not_of_its_development():
    text = README.read_text()
    words = re.findall(r"\b(stop|stops|session|sessions|round|rounds)\b(?! trip)", text, flags=re.IGNORECASE)
    assert not words, words


def test_files_the_readme_names_exist():
    text = README.read_text()
    named = set(re.findall(r"`((?:docs|benchmarks|scripts|src/gmtnet|tests)/[\w./-]+\.(?:md|py|png|json))`", text))
    named |= set(re.findall(r"\((docs/[\w.-]+\.png)\)", text))
    assert named, "the README names no files"
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing


def test_benchmark_records_hold_no_absolute_paths():
    """Results record the command, commit, machine and date, never this machine's folders."""
    files = sorted((ROOT / "benchmarks" / "results").glob("*.*"))
    assert files
    found = {f.name: m for f in files for m in re.findall(r"(?<![\w.])/(?:tmp|home|root|work|Users|opt|mnt)/[\w./-]*",
                                                         f.read_text())}
    assert not found, found


def test_recorded_commands_hold_no_absolute_paths(tmp_path, monkeypatch):
    from gmtnet.utils.environment import command_line

    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").mkdir()
    outside = tmp_path.parent / "elsewhere" / "old-checkout" / "src"
    line = command_line([str(tmp_path / "benchmarks" / "paired_ab.py"), str(outside), "--out=" + str(tmp_path / "r"),
                         "--rounds", "30"])
    assert line == "python benchmarks/paired_ab.py .../old-checkout/src --out=r --rounds 30"
