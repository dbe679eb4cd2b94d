"""Cartesian <-> irreps conversion through e3nn's ``CartesianTensor``.

The change of basis Q (dim, 3, ..., 3) is built once per formula in float64 and cached (in the
process, and on disk under ``$GMTNET_DATA/bases``); it is orthonormal (Q Q^T = I), so
``to_irreps`` then ``from_irreps`` is the orthogonal projection onto the tensor type's index
symmetry. The irreps carry parity: piezoelectric gives 2x1o+1x2o+1x3o.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # annotations only: tensor_type imports this module
    from gmtnet.tensors.tensor_type import TensorType


@contextmanager
def float64_default():
    """Temporarily make float64 torch's default dtype (restored on exit)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def formula_irreps(formula: str):
    """The e3nn Irreps of the tensors an index-symmetry formula describes (e3nn's
    ``CartesianTensor(formula)``, as plain Irreps), with parity: "ijk=ikj" gives 2x1o+1x2o+1x3o."""
    from e3nn import o3

    return o3.Irreps(_reduced_basis(formula)[0])


def column_ls(irreps) -> torch.Tensor:
    """(irreps.dim,) long: the rotation order l of each column of features laid out as ``irreps``."""
    return torch.tensor([ir.l for mul, ir in irreps for _ in range(mul * ir.dim)], dtype=torch.long)


@lru_cache(maxsize=None)
def _reduced_basis(formula: str) -> tuple[str, torch.Tensor]:
    """(irreps, Q in float64) of ``formula`` from e3nn's ``CartesianTensor`` (about 2 s for the
    elastic formula), kept in ``$GMTNET_DATA/bases`` per e3nn version (arrays only, checked to be
    an orthonormal basis of the right shape when read back) so that a new process reads it."""
    import e3nn
    from e3nn.io import CartesianTensor

    from gmtnet.utils.io import atomic_write_bytes, data_dir

    shape = (3,) * len(formula.split("=")[0].replace("-", ""))
    name = "".join(c if c.isalnum() else {"=": "_", "-": "m"}.get(c, "x") for c in formula)
    path = data_dir() / "bases" / f"e3nn-{e3nn.__version__}" / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            irreps, q = str(stored["irreps"]), stored["q"]
        flat = q.reshape(len(q), -1)
        if (q.dtype == np.float64 and q.shape[1:] == shape and flat.shape[1] == 3 ** len(shape)
                and np.allclose(flat @ flat.T, np.eye(len(q)), atol=1e-12)):
            return irreps, torch.from_numpy(q)
    except (OSError, ValueError, KeyError):
        pass  # not there yet, or not a valid basis: computed below
    with float64_default():
        tensor = CartesianTensor(formula)
        q = tensor.reduced_tensor_products().change_of_basis.detach().to(torch.float64).clone()
    irreps = str(tensor)
    try:
        buffer = io.BytesIO()
        np.savez(buffer, irreps=np.array(irreps), q=q.numpy())
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # a read-only cache: computed in every process
    return irreps, q


def _change_of_basis(formula: str) -> torch.Tensor:
    return _reduced_basis(formula)[1]


def change_of_basis(ttype: TensorType, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal change of basis Q, shape (irreps.dim, 3, ..., 3): irreps x -> Cartesian x @ Q."""
    return _change_of_basis(ttype.formula).to(dtype=dtype, device=device)


def to_irreps(tensor: torch.Tensor, ttype: TensorType) -> torch.Tensor:
    """Irreps coefficients (..., irreps.dim) of a Cartesian tensor (..., 3, ..., 3)."""
    tensor = torch.as_tensor(tensor)
    q = change_of_basis(ttype, tensor.dtype, tensor.device).flatten(1)
    return tensor.flatten(-ttype.order) @ q.T


def from_irreps(x: torch.Tensor, ttype: TensorType) -> torch.Tensor:
    """Cartesian tensor (..., 3, ..., 3) from irreps coefficients (..., irreps.dim)."""
    x = torch.as_tensor(x)
    q = change_of_basis(ttype, x.dtype, x.device).flatten(1)
    return (x @ q).reshape(*x.shape[:-1], *ttype.shape)
