"""Shared fixtures: ideal crystals of all seven crystal systems and the offline MP fixture data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from gmtnet.testing import ideal_crystals

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def crystals() -> dict[str, Structure]:
    return ideal_crystals()


@pytest.fixture
def mp_root(tmp_path) -> Path:
    """A data directory holding the committed MP fixture CSVs as if fetched."""
    shutil.copytree(FIXTURES / "mp" / "raw", tmp_path / "mp" / "raw")
    return tmp_path


@pytest.fixture
def mp2026_fixtures(monkeypatch) -> dict:
    """Points the mp2026 source at the committed fixture archives (real rows cut from the full
    ones, with their own checksums); returns expected.json: {task: {id: split or "removed: rule"}}."""
    from gmtnet.data.sources import mp2026

    folder = FIXTURES / "mp2026"
    sums = {name: digest for digest, name in (line.split() for line in (folder / "SHA256SUMS").read_text().splitlines())}
    monkeypatch.setattr(mp2026, "ARCHIVE_DIR", folder)
    monkeypatch.setattr(mp2026, "ARCHIVES", {task: mp2026.Archive(a.file, sums[a.file]) for task, a in mp2026.ARCHIVES.items()})
    return json.loads((folder / "expected.json").read_text())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
