"""Quantities derived from predicted tensors (pymatgen's tensor classes where they compute them).

Units: elastic moduli GPa; piezoelectric stress coefficients e in C/m^2; strain coefficients
d = e S in pC/N (S the compliance, the inverse of the Voigt stiffness; engineering shear strains).
"""

from __future__ import annotations

import numpy as np

from gmtnet.tensors import ELASTIC, PIEZOELECTRIC, is_positive_definite, to_voigt

PC_PER_N = 1e3  # (C/m^2) x (1/GPa) = 1e-9 C/N = 1e3 pC/N


def dielectric_properties(eps: np.ndarray) -> dict:
    """Eigenvalues (ascending) and the polycrystalline (orientational) average trace/3."""
    eig = np.linalg.eigvalsh(0.5 * (eps + eps.T))
    return {"eigenvalues": eig.tolist(), "polycrystalline_average": float(np.trace(eps) / 3.0)}


def born_stable(c_voigt: np.ndarray) -> bool:
    """Born mechanical stability: the 6x6 Voigt stiffness is positive definite (exact test)."""
    return is_positive_definite(c_voigt)


def elastic_properties(c: np.ndarray) -> dict:
    """Voigt/Reuss/Hill bulk and shear moduli, Young's modulus and Poisson ratio (Hill), universal
    anisotropy, Born stability. Reuss bounds and derived values need an invertible stiffness;
    they are None otherwise."""
    from pymatgen.analysis.elasticity import ElasticTensor

    et = ElasticTensor(c)
    voigt = to_voigt(c, ELASTIC)
    out = {"k_voigt": float(et.k_voigt), "g_voigt": float(et.g_voigt), "born_stable": born_stable(voigt)}
    try:
        k_r, g_r = float(et.k_reuss), float(et.g_reuss)
        k_h, g_h = float(et.k_vrh), float(et.g_vrh)
        out.update(k_reuss=k_r, g_reuss=g_r, k_vrh=k_h, g_vrh=g_h,
                   youngs_modulus=float(9 * k_h * g_h / (3 * k_h + g_h)),
                   poisson_ratio=float((3 * k_h - 2 * g_h) / (6 * k_h + 2 * g_h)),
                   universal_anisotropy=float(et.universal_anisotropy))
    except (np.linalg.LinAlgError, ZeroDivisionError, ValueError):
        out.update(k_reuss=None, g_reuss=None, k_vrh=None, g_vrh=None, youngs_modulus=None, poisson_ratio=None,
                   universal_anisotropy=None)
    return out


def piezoelectric_properties(e: np.ndarray, c: np.ndarray | None = None) -> dict:
    """Largest |e_ij| (Voigt, C/m^2) and where; with the elastic tensor ``c`` (GPa) also the
    strain coefficients d = e C^-1 (3x6 Voigt, pC/N) and the largest |d_ij|."""
    e_v = to_voigt(e, PIEZOELECTRIC)
    i, j = np.unravel_index(int(np.argmax(np.abs(e_v))), e_v.shape)
    out = {"max_abs_e": float(abs(e_v[i, j])), "max_abs_e_component": f"e{i + 1}{j + 1}" if e_v[i, j] else None}
    if c is not None:
        c_v = to_voigt(c, ELASTIC)
        try:
            d = e_v @ np.linalg.inv(c_v) * PC_PER_N
        except np.linalg.LinAlgError:
            d = None
        if d is not None:
            a, b = np.unravel_index(int(np.argmax(np.abs(d))), d.shape)
            out.update(d_voigt_pC_per_N=d.tolist(), max_abs_d=float(abs(d[a, b])),
                       max_abs_d_component=f"d{a + 1}{b + 1}" if d[a, b] else None)
    return out


def derived_properties(tensors: dict) -> dict:
    """{task: properties} for the tasks present in ``tensors`` ({task: Cartesian tensor})."""
    out = {}
    if "dielectric" in tensors:
        out["dielectric"] = dielectric_properties(tensors["dielectric"])
    if "elastic" in tensors:
        out["elastic"] = elastic_properties(tensors["elastic"])
    if "piezoelectric" in tensors:
        out["piezoelectric"] = piezoelectric_properties(tensors["piezoelectric"], tensors.get("elastic"))
    return out


__all__ = ["derived_properties", "dielectric_properties", "elastic_properties", "piezoelectric_properties",
           "born_stable"]
