"""Cartesian <-> Voigt conversion for any TensorType with Voigt pairs.

Convention (pymatgen's): the pair (j, k) of a contracted index pair becomes one Voigt index in the
order xx, yy, zz, yz, xz, xy, with no engineering factors (as pymatgen's ``ElasticTensor`` and
``PiezoTensor`` ``from_voigt``). Other Voigt orders (VASP/JARVIS: xx, yy, zz, xy, yz, zx) are
accepted by passing ``order``.

Works on numpy arrays and torch tensors with any leading batch dimensions.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from gmtnet.tensors.tensor_type import TensorType

Pair = tuple[int, int]
PYMATGEN_VOIGT_ORDER: tuple[Pair, ...] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
VASP_VOIGT_ORDER: tuple[Pair, ...] = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2))


@lru_cache(maxsize=None)
def _voigt_number(order: tuple[Pair, ...]) -> dict[Pair, int]:
    table = {}
    for n, (a, b) in enumerate(order):
        table[(a, b)] = n
        table[(b, a)] = n
    if len(table) != 9:
        raise ValueError(f"Voigt order {order} does not cover the 6 symmetric index pairs")
    return table


def voigt_index(ttype: TensorType, index: tuple[int, ...], order: tuple[Pair, ...] = PYMATGEN_VOIGT_ORDER) -> tuple[int, ...]:
    """Voigt index (0-based, one entry per axis of ``ttype.voigt_shape``) of a full index."""
    if ttype.voigt_pairs is None:
        raise ValueError(f"tensor type {ttype.name!r} has no Voigt form")
    number = _voigt_number(tuple(order))
    partner = dict(ttype.voigt_pairs)
    contracted = {i for pair in ttype.voigt_pairs for i in pair}
    out = []
    for i in range(ttype.order):
        if i in partner:
            out.append(number[(index[i], index[partner[i]])])
        elif i not in contracted:
            out.append(index[i])
    return tuple(out)


@lru_cache(maxsize=None)
def _maps(ttype: TensorType, order: tuple[Pair, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(gather, average): gather[f] = flat Voigt index of flat full index f; average (n_voigt, 3^n)."""
    vshape = ttype.voigt_shape
    gather = np.array([np.ravel_multi_index(voigt_index(ttype, idx, order), vshape)
                       for idx in itertools.product(range(3), repeat=ttype.order)], dtype=np.int64)
    n_voigt = int(np.prod(vshape))
    average = np.zeros((n_voigt, gather.size))
    average[gather, np.arange(gather.size)] = 1.0
    average /= average.sum(axis=1, keepdims=True)
    return gather, average


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def from_voigt(voigt, ttype: TensorType, order: tuple[Pair, ...] = PYMATGEN_VOIGT_ORDER):
    """Full Cartesian tensor (..., 3, ..., 3) from its Voigt form (..., *ttype.voigt_shape)."""
    gather, _ = _maps(ttype, tuple(order))
    vshape = ttype.voigt_shape
    batch = tuple(voigt.shape[: voigt.ndim - len(vshape)])
    if tuple(voigt.shape[len(batch):]) != vshape:
        raise ValueError(
            f"{ttype.name} Voigt form must have shape {vshape}, got {tuple(voigt.shape)}"
        )
    flat = voigt.reshape(*batch, -1)
    if _is_torch(voigt):
        import torch

        full = flat[..., torch.as_tensor(gather, device=voigt.device)]
    else:
        full = np.asarray(flat)[..., gather]
    return full.reshape(*batch, *ttype.shape)


def to_voigt(tensor, ttype: TensorType, order: tuple[Pair, ...] = PYMATGEN_VOIGT_ORDER):
    """Voigt form (..., *ttype.voigt_shape) of a full Cartesian tensor (..., 3, ..., 3).

    Entries that Voigt notation merges are averaged, so a tensor that obeys the index symmetry
    round-trips exactly and one that does not is projected onto it.
    """
    _, average = _maps(ttype, tuple(order))
    batch = tuple(tensor.shape[: tensor.ndim - ttype.order])
    if tuple(tensor.shape[len(batch):]) != ttype.shape:
        raise ValueError(f"{ttype.name} tensor must have shape {ttype.shape}, got {tuple(tensor.shape)}")
    flat = tensor.reshape(*batch, -1)
    if _is_torch(tensor):
        import torch

        v = flat @ torch.as_tensor(average.T, dtype=tensor.dtype, device=tensor.device)
    else:
        v = np.asarray(flat) @ average.T
    return v.reshape(*batch, *ttype.voigt_shape)
