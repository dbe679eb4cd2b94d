"""Crystal graphs (paper section 3.1): periodic k-nearest-neighbour radius graphs, their smooth
counterpart (``cutoff``) and atom features."""

from gmtnet.graph.cutoff import envelope, smooth_step, soft_knn_radius
from gmtnet.graph.neighbors import GRAPHS, CrystalGraph, build_graph, knn_radius_edges, smooth_radius_edges
from gmtnet.graph.atom_features import atom_features, ATOM_FEATURE_DIM

__all__ = ["GRAPHS", "CrystalGraph", "build_graph", "knn_radius_edges", "smooth_radius_edges", "envelope",
           "smooth_step", "soft_knn_radius", "atom_features", "ATOM_FEATURE_DIM"]
