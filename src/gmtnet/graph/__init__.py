"""Crystal graphs (paper section 3.1): periodic k-nearest-neighbour radius graphs and atom features."""

from gmtnet.graph.neighbors import CrystalGraph, build_graph, knn_radius_edges
from gmtnet.graph.atom_features import atom_features, ATOM_FEATURE_DIM

__all__ = ["CrystalGraph", "build_graph", "knn_radius_edges", "atom_features", "ATOM_FEATURE_DIM"]
