"""Direction-dependent response surfaces (paper appendix A.4), drawn with matplotlib.

For each unit direction v the surface point is r(v) v with
- dielectric: r = |eps . v| (the field-induced displacement magnitude);
- elastic: r = E(v) = 1 / (S_ijkl v_i v_j v_k v_l), the directional Young's modulus (GPa),
  S the compliance (inverse of the stiffness in the 4th-order sense);
- piezoelectric: r = |e_ijk v_i v_j v_k|, the longitudinal response (C/m^2).
Colour is the magnitude r. Axes are the crystal's Cartesian frame as given (x, y, z).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gmtnet.tensors import ELASTIC, from_voigt, to_voigt
from gmtnet.utils.io import atomic_write_bytes

TITLES = {"dielectric": ("|eps . v|", ""), "elastic": ("Young's modulus E(v)", "GPa"),
          "piezoelectric": ("longitudinal |e_L(v)|", "C/m^2")}


def sphere(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions on a (theta, phi) grid: (n, 2n, 3) and the grid shape."""
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n), indexing="ij")
    v = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    return v, theta.shape


def compliance(c: np.ndarray) -> np.ndarray:
    """Full 3x3x3x3 compliance S (1/GPa) of a stiffness C (GPa): S_voigt = C_voigt^-1 with the
    engineering factors removed (S_ijkl = S_IJ / (w_I w_J), w = 1 normal, 2 shear)."""
    s_voigt = np.linalg.inv(to_voigt(c, ELASTIC))
    w = np.array([1, 1, 1, 2, 2, 2], dtype=float)
    return from_voigt(s_voigt / np.outer(w, w), ELASTIC)


def directional_magnitude(task: str, tensor: np.ndarray, v: np.ndarray) -> np.ndarray:
    """r(v) for unit vectors v (..., 3); see the module docstring."""
    if task == "dielectric":
        return np.linalg.norm(np.einsum("ij,...j->...i", tensor, v), axis=-1)
    if task == "elastic":
        s = compliance(tensor)
        return 1.0 / np.einsum("ijkl,...i,...j,...k,...l->...", s, v, v, v, v)
    if task == "piezoelectric":
        return np.abs(np.einsum("ijk,...i,...j,...k->...", tensor, v, v, v))
    raise ValueError(f"no surface defined for {task!r}")


def plot_surface(task: str, tensor: np.ndarray, path: str | Path, title: str = "", n: int = 60) -> Path:
    """Write a PNG of the response surface of ``tensor`` to ``path`` (atomically); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors


    v, _ = sphere(n)
    r = directional_magnitude(task, tensor, v)
    if not np.all(np.isfinite(r)):
        r = np.where(np.isfinite(r), r, np.nan)
    xyz = r[..., None] * v
    norm = colors.Normalize(vmin=np.nanmin(r), vmax=np.nanmax(r) if np.nanmax(r) > np.nanmin(r) else np.nanmin(r) + 1)
    fig = plt.figure(figsize=(5.5, 5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(xyz[..., 0], xyz[..., 1], xyz[..., 2], facecolors=cm.viridis(norm(r)), rstride=1, cstride=1,
                    linewidth=0, antialiased=False, shade=False)
    lim = np.nanmax(np.abs(xyz)) or 1.0
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim), xlabel="x", ylabel="y", zlabel="z")
    ax.set_box_aspect((1, 1, 1))
    label, unit = TITLES[task]
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, shrink=0.6, pad=0.1)
    bar.set_label(f"{label}{f' ({unit})' if unit else ''}")
    ax.set_title(title or f"{task}: {label}", fontsize=10)
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
