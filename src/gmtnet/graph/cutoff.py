"""Smooth per-atom cutoffs: the graph of ``graph="smooth"`` models (continuous in the positions).

The paper's graph (``neighbors.knn_radius_edges``) gives atom i every neighbour within its k-th
neighbour distance: when a position moves so that two neighbours swap ranks across that radius,
an edge appears or disappears with its whole message, and the output jumps. Here every message
is multiplied by a weight that goes smoothly to 0 at a cutoff that itself moves smoothly with
the positions, so the network's output is a continuous (C^2) function of positions and lattice.

- Radius. r_i is the soft k-th neighbour distance: the unique r with
  sum_j S((r - d_ij) / w) = k - 1/2, where d_ij runs over every periodic image of every atom
  (itself excluded) and S is the C^2 smooth step from 0 (t <= -1) to 1 (t >= 1). Where the
  distances near the k-th neighbour's are more than 2w apart, r_i is exactly the k-th neighbour
  distance (the paper's radius); where they are closer (a degenerate shell) it lies between them.
  It is a weighted mean's worth of Lipschitz: |dr_i| <= max_j |dd_ij|.
- Envelope. An edge j -> i of length d weighs e = 1 - S(2 (d - r_i) / (b r_i) - 1): 1 up to r_i
  (the paper's neighbours keep their full weight), smoothly down to 0 at (1 + b) r_i. The graph
  keeps the edges with d <= (1 + b) r_i + tol (``RADIUS_TOL``); those beyond the envelope's end
  weigh 0 and are kept only so that symmetry-equivalent atoms keep equal edge sets.

``smooth_step`` and ``envelope`` take NumPy arrays or torch tensors alike (the model computes the
envelope in torch, so that derivatives with respect to positions include it).
"""

from __future__ import annotations

import numpy as np

RADIUS_WIDTH = 0.05  # w, Angstrom: neighbours closer than 2w in distance share the radius
ENVELOPE_BAND = 0.1  # b: the envelope falls from 1 at r_i to 0 at (1 + b) r_i
BISECTION_STEPS = 60


def smooth_step(t):
    """C^2 step: 0 for t <= -1, 1 for t >= 1, the quintic 6u^5 - 15u^4 + 10u^3 of u = (t + 1)/2
    between (odd about t = 0: S(-t) = 1 - S(t)). NumPy array or torch tensor in, same out."""
    u = ((t + 1.0) * 0.5).clip(0.0, 1.0)
    return u * u * u * (u * (u * 6.0 - 15.0) + 10.0)


def envelope(length, radius, band: float = ENVELOPE_BAND):
    """Edge weight in [0, 1]: 1 for length <= radius, 0 for length >= (1 + band) radius, C^2 in
    both arguments. ``length``, ``radius``: same shape, Angstrom (arrays or tensors)."""
    return smooth_step(1.0 - 2.0 * (length - radius) / (band * radius))  # = 1 - S(-t), exact at both ends


def kth_distances(centre: np.ndarray, dist: np.ndarray, n_atoms: int, k: int) -> np.ndarray | None:
    """(n_atoms,) the k-th smallest ``dist`` among each atom's pairs (``centre`` (P,) atom index,
    ``dist`` (P,) Angstrom), or None when some atom has fewer than k pairs."""
    counts = np.bincount(centre, minlength=n_atoms)
    if counts.min() < k:
        return None
    order = np.lexsort((dist, centre))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return dist[order][starts + k - 1]


def soft_knn_radius(centre: np.ndarray, dist: np.ndarray, n_atoms: int, k: int,
                    width: float = RADIUS_WIDTH, kth: np.ndarray | None = None) -> np.ndarray:
    """(n_atoms,) soft k-th neighbour distance of each atom (see the module docstring).

    Args:
        centre: (P,) int atom index of each neighbour pair; dist: (P,) its distance, Angstrom.
            Every atom needs its k nearest neighbours among the pairs, and every pair within its
            k-th distance + 2 ``width``.
        k: neighbour rank; width: w, Angstrom.
        kth: the pairs' ``kth_distances`` if already known.

    Bisection on [d_k - w, d_k + w], where the root lies (the k - 1 nearest contribute at most
    k - 1 below it, the k nearest at least k above it); the count is nondecreasing in r.
    """
    if kth is None:
        kth = kth_distances(centre, dist, n_atoms, k)
        if kth is None:
            raise ValueError(f"an atom has fewer than k = {k} neighbour pairs")
    near = np.abs(dist - kth[centre]) < 2.0 * width  # the pairs whose step is not constant
    below = np.bincount(centre[~near & (dist < kth[centre])], minlength=n_atoms).astype(float)
    c, d = centre[near], dist[near]
    lo, hi = kth - width, kth + width
    target = k - 0.5 - below
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        count = np.bincount(c, weights=smooth_step((mid[c] - d) / width), minlength=n_atoms)
        low = count < target
        lo = np.where(low, mid, lo)
        hi = np.where(low, hi, mid)
    return 0.5 * (lo + hi)
