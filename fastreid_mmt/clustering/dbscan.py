"""DBSCAN on a sparse precomputed distance matrix, and MMT's automatic eps.

The matrices come from :func:`~fastreid_mmt.clustering.jaccard.jaccard_distance`:
square CSR matrices whose stored entries, explicit zeros included, are every
pair closer than a cutoff (plus, optionally, the smallest pairs beyond it),
absent entries standing for larger distances.

MMT's eps rule (``examples/mmt_train_dbscan.py``) averages the
``round(rho * count)`` smallest non-zero pairwise distances (``count``: the
non-zero pairs ``i < j``). On a cut matrix it is exact when the matrix holds
every pair below its cutoff and the :func:`eps_rule_pairs` smallest pairs
``i < j`` overall, and its absent pairs beyond those are exactly one (what
``jaccard_distance(..., keep_smallest=eps_rule_pairs(N, rho))`` returns).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

__all__ = ["dbscan", "auto_eps", "eps_rule_pairs"]


def eps_rule_pairs(num: int, rho: float) -> int:
    """Upper bound on the number of pairs MMT's eps rule averages: ``round(rho * N (N - 1) / 2)``."""
    return int(np.round(rho * (num * (num - 1) // 2)))


def _check_square(dist) -> sp.csr_matrix:
    """Validates a square scipy sparse matrix and returns it as CSR."""
    if not sp.issparse(dist):
        raise ValueError(f"dist must be a scipy.sparse matrix, got {type(dist).__name__}")
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be a square (N, N) matrix, got shape {dist.shape}")
    if dist.shape[0] < 1:
        raise ValueError("dist must have at least one row")
    dist = dist.tocsr()
    if dist.nnz and not np.all(np.isfinite(dist.data)):
        raise ValueError("dist contains NaN or infinite values")
    if dist.nnz and dist.data.min() < 0:
        raise ValueError(f"dist must be non-negative, found {dist.data.min()}")
    return dist


def _csr_sorted_by_value(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, num: int) -> sp.csr_matrix:
    """Builds a CSR whose rows list their entries by increasing value.

    scikit-learn requires this order for precomputed sparse graphs and would
    otherwise re-sort row by row in Python.

    Args:
        rows: (P,) int row of each entry, non-decreasing.
        cols: (P,) int column of each entry.
        vals: (P,) non-negative float32 values.
        num: matrix size N.

    Returns:
        (N, N) CSR matrix.
    """
    if vals.dtype == np.float32:
        # Non-negative float32 values order like their bit patterns read as
        # ints (adding +0.0 turns a -0.0 into +0.0).
        bits = (vals + np.float32(0.0)).view(np.int32).astype(np.int64)
        order = np.argsort((rows.astype(np.int64) << 32) | bits, kind="stable")
    else:
        order = np.lexsort((vals, rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num))])
    return sp.csr_matrix((vals[order], cols[order], indptr), shape=(num, num))


def dbscan(
    dist: sp.spmatrix,
    eps: float,
    min_samples: int = 4,
    absent_value: float = 1.0,
    n_jobs: int = 1,
) -> np.ndarray:
    """DBSCAN labels from a sparse precomputed distance matrix.

    Two points are neighbours when their stored distance is at most ``eps``;
    each point counts itself, whatever its stored diagonal. This gives the
    labels of scikit-learn's DBSCAN on the equivalent dense matrix (absent
    entries equal to ``absent_value``), provided ``eps < absent_value``.

    Args:
        dist: (N, N) scipy sparse matrix of distances, explicit zeros kept.
        eps: neighbourhood radius, ``0 < eps < absent_value``.
        min_samples: neighbours (self included) making a core point, ``>= 1``.
        absent_value: the distance that absent entries stand for.
        n_jobs: passed to scikit-learn.

    Returns:
        (N,) int64 cluster labels ``0..C-1``; ``-1`` marks outliers.

    Raises:
        ValueError: on a non-square or negative matrix, or ``eps`` /
            ``min_samples`` out of range.
    """
    graph = _check_square(dist)
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a positive finite number, got eps={eps}")
    if eps >= absent_value:
        raise ValueError(
            f"eps={eps} must be below absent_value={absent_value}: absent entries of a "
            "sparse matrix would be neighbours too, use a dense matrix instead"
        )
    if int(min_samples) != min_samples or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer, got {min_samples}")
    # Entries above eps never matter: drop them before sklearn copies and sorts.
    num = graph.shape[0]
    rows = np.repeat(np.arange(num), np.diff(graph.indptr))
    keep = graph.data <= eps
    graph = _csr_sorted_by_value(rows[keep], graph.indices[keep], graph.data[keep], num)
    model = DBSCAN(eps=eps, min_samples=int(min_samples), metric="precomputed", n_jobs=n_jobs)
    return model.fit(graph).labels_.astype(np.int64)


def auto_eps(dist: sp.spmatrix, rho: float = 1.6e-3, absent_value: float = 1.0) -> float:
    """MMT's automatic DBSCAN radius, without densifying the matrix.

    The reference takes the strict upper triangle of the dense matrix, keeps
    its non-zero entries (absent pairs count, with value ``absent_value``),
    sorts them and returns the mean of the ``round(rho * count)`` smallest.
    On a matrix cut below one see the module docstring for when it is exact.
    This reproduces it exactly for a given matrix; note that the rule jumps
    when a distance moves between exactly 0 (dropped) and a tiny positive
    value (kept), so rounding-level differences between two matrices can
    move eps by more than their values differ.

    Args:
        dist: (N, N) scipy sparse distance matrix, explicit zeros kept,
            stored values at most ``absent_value``.
        rho: fraction of the pairs averaged, ``0 < rho <= 1``.
        absent_value: the distance that absent entries stand for (positive).

    Returns:
        The radius, a Python float.

    Raises:
        ValueError: on a non-square matrix, a stored value above
            ``absent_value``, ``rho`` out of range, or when
            ``round(rho * count)`` is zero.
    """
    graph = _check_square(dist)
    if not 0 < rho <= 1:
        raise ValueError(f"rho must satisfy 0 < rho <= 1, got rho={rho}")
    if absent_value <= 0:
        raise ValueError(f"absent_value must be positive, got {absent_value}")
    num = graph.shape[0]
    rows = np.repeat(np.arange(num), np.diff(graph.indptr))
    upper = graph.data[graph.indices > rows].astype(np.float64)
    if upper.size and upper.max() > absent_value:
        raise ValueError(f"stored distances must not exceed absent_value={absent_value}, found {upper.max()}")
    count = num * (num - 1) // 2 - int(np.count_nonzero(upper == 0))
    top = int(np.round(rho * count))
    if top < 1:
        raise ValueError(
            f"round(rho * count) = round({rho} * {count}) is 0: too few non-zero pairs for N={num}"
        )
    positive = upper[upper > 0]
    if positive.size > top:
        positive = np.partition(positive, top - 1)[:top]
    padding = top - positive.size
    return float((positive.sum() + padding * absent_value) / top)
