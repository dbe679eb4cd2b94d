"""Quantities derived from predicted tensors, by the definitions pymatgen's tensor classes use
(tests compare the two).

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


def electronic_dielectric_properties(eps_inf: np.ndarray) -> dict:
    """``dielectric_properties`` of the electronic (high-frequency) permittivity, and the
    refractive indices it gives at optical frequencies (no absorption): ``refractive_indices``,
    the square roots of its eigenvalues (ascending; the principal indices, e.g. n_o, n_o, n_e of
    a uniaxial crystal), and ``refractive_index``, the square root of its polycrystalline
    average. An eigenvalue below 0 (only from a model without bounds) gives None."""
    out = dielectric_properties(eps_inf)
    roots = [float(np.sqrt(x)) if x >= 0 else None for x in out["eigenvalues"]]
    average = out["polycrystalline_average"]
    return out | {"refractive_indices": roots, "refractive_index": float(np.sqrt(average)) if average >= 0 else None}


def born_stable(c_voigt: np.ndarray) -> bool:
    """Born mechanical stability: the 6x6 Voigt stiffness is positive definite (exact test)."""
    return is_positive_definite(c_voigt)


def _upper_sum(m: np.ndarray) -> float:
    """m12 + m13 + m23 of a 3x3 block."""
    return float(m[0, 1] + m[0, 2] + m[1, 2])


def voigt_moduli(c_voigt: np.ndarray) -> tuple[float, float]:
    """(K_V, G_V): the Voigt bounds of the bulk and shear moduli of a 6x6 Voigt stiffness (GPa)."""
    normal, shear = c_voigt[:3, :3], c_voigt[3:, 3:]
    return (float(normal.sum() / 9.0),
            float((np.trace(normal) - _upper_sum(normal) + 3.0 * np.trace(shear)) / 15.0))


def reuss_moduli(c_voigt: np.ndarray) -> tuple[float, float]:
    """(K_R, G_R): the Reuss bounds, from the compliance S = C^-1 (6x6, no engineering factors);
    LinAlgError for a singular stiffness or a compliance whose sums vanish."""
    s = np.linalg.inv(c_voigt)
    normal, shear = s[:3, :3], s[3:, 3:]
    k_denominator = normal.sum()
    g_denominator = 4.0 * np.trace(normal) - 4.0 * _upper_sum(normal) + 3.0 * np.trace(shear)
    if not (k_denominator and g_denominator and np.isfinite(s).all()):
        raise np.linalg.LinAlgError("degenerate compliance")
    return float(1.0 / k_denominator), float(15.0 / g_denominator)


def elastic_properties(c: np.ndarray) -> dict:
    """Voigt/Reuss/Hill bulk and shear moduli, Young's modulus and Poisson ratio (Hill), universal
    anisotropy 5 G_V/G_R + K_V/K_R - 6 and Born stability of a Cartesian stiffness (3, 3, 3, 3),
    GPa (pymatgen's ElasticTensor definitions). Reuss bounds and the values derived from them need
    an invertible stiffness; they are None otherwise."""
    voigt = to_voigt(c, ELASTIC)
    k_v, g_v = voigt_moduli(voigt)
    out = {"k_voigt": k_v, "g_voigt": g_v, "born_stable": born_stable(voigt)}
    try:
        k_r, g_r = reuss_moduli(voigt)
    except np.linalg.LinAlgError:
        return out | dict.fromkeys(("k_reuss", "g_reuss", "k_vrh", "g_vrh", "youngs_modulus", "poisson_ratio",
                                    "universal_anisotropy"))
    k_h, g_h = 0.5 * (k_v + k_r), 0.5 * (g_v + g_r)
    hill_sum = 3.0 * k_h + g_h
    return out | {"k_reuss": k_r, "g_reuss": g_r, "k_vrh": k_h, "g_vrh": g_h,
                  "youngs_modulus": 9.0 * k_h * g_h / hill_sum if hill_sum else None,
                  "poisson_ratio": (3.0 * k_h - 2.0 * g_h) / (2.0 * hill_sum) if hill_sum else None,
                  "universal_anisotropy": 5.0 * g_v / g_r + k_v / k_r - 6.0}


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
    """{name: properties} for the tensors present in ``tensors`` ({name: Cartesian tensor}, the
    tasks and parts of ``CrystalPrediction.tensors``)."""
    out = {}
    if "dielectric" in tensors:
        out["dielectric"] = dielectric_properties(tensors["dielectric"])
    if "dielectric_electronic" in tensors:
        out["dielectric_electronic"] = electronic_dielectric_properties(tensors["dielectric_electronic"])
    if "dielectric_ionic" in tensors:
        out["dielectric_ionic"] = dielectric_properties(tensors["dielectric_ionic"])
    if "elastic" in tensors:
        out["elastic"] = elastic_properties(tensors["elastic"])
    if "piezoelectric" in tensors:
        out["piezoelectric"] = piezoelectric_properties(tensors["piezoelectric"], tensors.get("elastic"))
    return out


__all__ = ["derived_properties", "dielectric_properties", "electronic_dielectric_properties", "elastic_properties",
           "piezoelectric_properties", "born_stable", "voigt_moduli", "reuss_moduli"]
