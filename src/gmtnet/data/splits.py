"""Fixed train/val/test splits shipped with the package, and the rule used to make new ones."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np

SPLITS = ("train", "val", "test")


@lru_cache(maxsize=None)
def _shipped(name: str) -> dict[str, dict[str, list[str]]]:
    return json.loads(resources.files("gmtnet.data").joinpath(f"splits/{name}").read_text())


def mp_splits() -> dict[str, dict[str, list[str]]]:
    """{task: {split: [material_id, ...]}} of the shared Materials Project benchmark (matminer)."""
    return _shipped("mp_tensor_splits.json")


def mp2026_splits() -> dict[str, dict[str, list[str]]]:
    """{task: {split: [material_id, ...]}} of the MP-2026 benchmark (elastic, piezoelectric).

    Its rule (``derive_mp2026_split``): a material id of the matminer benchmark of the same task
    keeps its split there; every other id is split by ``random_split``."""
    return _shipped("mp2026_splits.json")


def mp_dfpt_splits() -> dict[str, list[str]]:
    """{split: [id, ...]} of the MP-DFPT dielectric benchmark (``random_split`` of its sorted ids)."""
    return _shipped("mp_dielectric_dfpt_splits.json")


def derive_mp2026_split(ids, matminer: dict[str, list[str]]) -> dict[str, str]:
    """{material_id: split} of ``ids`` by the MP-2026 rule, given the matminer split of the task."""
    old = split_lookup(matminer)
    out = random_split([i for i in ids if i not in old])
    out.update({i: old[i] for i in ids if i in old})
    return out


def split_lookup(splits: dict[str, list[str]]) -> dict[str, str]:
    """{material_id: split name} from {split name: [ids]}."""
    return {mid: name for name, ids in splits.items() for mid in ids}


def random_split(ids, seed: int = 42, fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """The benchmark's rule for a new source: sort ids, permute with default_rng(seed), then
    the first int(0.8 n) are train, the next int(0.1 n) val, the rest test."""
    ordered = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(ordered))
    n = len(ordered)
    n_train = int(fractions[0] * n)
    n_val = int(fractions[1] * n)
    n_test = n - n_train - n_val
    names = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return {ordered[p]: name for p, name in zip(perm, names)}
