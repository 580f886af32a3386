"""Pseudo-label generation for MMT: pure functions from features to labels.

* :func:`knn`: exact k-nearest neighbours, blocked (never ``N x N``).
* :func:`jaccard_distance`: sparse k-reciprocal Jaccard distance, equal to
  fast-reid's dense ``compute_jaccard_distance(..., search_option=3)``.
* :func:`dbscan` / :func:`auto_eps`: DBSCAN on that sparse matrix and MMT's
  automatic radius.
* :func:`kmeans`: k-means with faiss, or pure torch.
"""

from .dbscan import auto_eps, dbscan
from .jaccard import jaccard_distance
from .kmeans import kmeans
from .knn import knn

__all__ = ["knn", "jaccard_distance", "dbscan", "auto_eps", "kmeans"]
