"""Sparse k-reciprocal Jaccard distance (Zhong et al., CVPR 2017), two variants.

``variant="mmt"`` follows MMT's own ``mmt/utils/rerank.py``
``compute_jaccard_dist`` (defaults k1 = 20, k2 = 6), the one its DBSCAN script
uses; ``variant="spcl"`` follows fast-reid's (and SpCL's)
``fastreid.utils.compute_dist.compute_jaccard_distance(..., search_option=3)``.
They differ in two places:

============================  =================================  ==========================
step                          ``mmt``                            ``spcl``
============================  =================================  ==========================
neighbours searched           ``k1 + 1`` (self included)         ``k1`` (self included)
exp weights of ``E(i)``       ``exp(-|x_i - x_e|^2 / M_i)``      ``exp(-|x_i - x_e|^2)``
============================  =================================  ==========================

``M_i`` is the reference's column maximum of its ``N x N`` squared-distance
matrix, i.e. the largest squared distance from ``i`` to any point. It is
computed exactly (up to float32 rounding) without an ``N x N`` matrix: the
k-NN pass reads the maxima off the distance tiles it computes anyway. The
reference builds that matrix as ``2 |x_i|^2 - 2 x_i . x_j``, which is the
squared distance only on L2-normalised rows, so the ``mmt`` variant requires
them (MMT normalises the averaged feature before calling it).

The other steps are shared (see :mod:`.reciprocal` and :mod:`.min_sums`):
k-reciprocal sets, expansion, softmax weights, query expansion over the
``k2`` nearest, ``d = max(0, 1 - m / (2 - m))`` with ``m`` the sum of minima.

What is stored: the diagonal, every pair with distance below ``cutoff``
(exact: all such pairs, with their exact values) and, with ``keep_smallest``,
the smallest pairs above it that an eps rule may need. Absent pairs have a
distance of at least ``cutoff`` (at most one). ``cutoff=1`` stores every pair
with distance below one, as the dense references would show them. Values
match the references up to float32 rounding (about 1e-6): sums of minima and
query expansion add in the references' order; the weights come from other
kernels.
"""

import numpy as np
import scipy.sparse as sp
import torch

from .checks import check_features, check_range
from .knn import knn
from .min_sums import min_sum_distances
from .reciprocal import expansion_pattern, reciprocal_mask, softmax_weights

__all__ = ["jaccard_distance", "VARIANTS"]

VARIANTS = ("mmt", "spcl")
MAX_WORKERS = 4  # threads of the sum of minima (each holds a 16 MB slice and 12 bytes per triple)
UNIT_NORM_TOL = 1e-3  # |x|^2 may differ from 1 by this much in the "mmt" variant


def _check_unit_rows(sq: torch.Tensor) -> None:
    low, high = float(sq.min()), float(sq.max())
    if low < 1 - UNIT_NORM_TOL or high > 1 + UNIT_NORM_TOL:
        raise ValueError(
            "the 'mmt' Jaccard variant needs L2-normalised rows (MMT's reference computes squared distances "
            f"as 2|x_i|^2 - 2 x_i.x_j); got squared norms in [{low:.4g}, {high:.4g}]: normalise the features"
        )


def _encoding_vectors(features, rank, k1, k2, divisor, sq_norms=None, knn_sq_dist=None) -> sp.csr_matrix:
    """Query-expanded k-reciprocal vectors ``V`` (N, N) float32 CSR, sorted indices.

    ``knn_sq_dist``: optional (N, K) numpy squared distances of ``rank`` (the k-NN search's),
    reused for the entries of the expansion sets they cover.
    """
    num = features.shape[0]
    recip = reciprocal_mask(rank, k1 + 1)
    recip_half = reciprocal_mask(rank, int(np.around(k1 / 2)) + 1)
    v = expansion_pattern(rank, recip, recip_half)
    known = None if knn_sq_dist is None else (rank, knn_sq_dist)
    v.data = softmax_weights(features, v, divisor, sq_norms, known)
    if k2 > 1:
        first = rank[:, :k2].ravel()
        expand = sp.csr_matrix(
            (np.ones(first.size, dtype=np.float32), first, np.arange(0, first.size + 1, k2)),
            shape=(num, num),
        )
        v = expand @ v  # sums in the reference's order, then the mean
        v.data /= np.float32(k2)
    v.sort_indices()
    return v


@torch.no_grad()
def jaccard_distance(
    features: torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    variant: str = "mmt",
    cutoff: float = 1.0,
    keep_smallest: int = 0,
    block_size: int = 1024,
    knn_backend: str = "torch",
    triple_budget: int = 1 << 19,
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance between all rows of ``features``.

    Args:
        features: (N, D) float tensor on CPU or CUDA; used in float32. Rows
            must be L2-normalised for ``variant="mmt"``.
        k1: neighbourhood size of the k-reciprocal sets, ``1 <= k1 <= N``.
        k2: query-expansion size, ``1 <= k2 <= k1``.
        variant: ``"mmt"`` (MMT's reference) or ``"spcl"`` (fast-reid / SpCL).
        cutoff: pairs at distance ``>= cutoff`` are dropped, ``0 < cutoff <= 1``.
        keep_smallest: keep in addition the ``keep_smallest`` smallest pairs
            ``i < j`` at or above ``cutoff`` (see :func:`.dbscan.eps_rule_pairs`).
        block_size: rows per block in the k-NN search.
        knn_backend: ``"torch"`` or ``"faiss"``, passed to :func:`knn`.
        triple_budget: ``(i, l, j)`` triples per block in the sum of minima;
            bounds the temporary memory (about 12 bytes per triple and thread).
            The default keeps a block's arrays (6 MB) in cache: with 2^22 (48 MB
            per thread) a fresh process spent 0.2 s more faulting pages in, on
            the benchmark's 8,000 x 2048 hub features.

    Returns:
        (N, N) float32 symmetric ``scipy.sparse.csr_matrix``, sorted indices,
        explicit zeros kept, the diagonal (about 0) stored in every row.

    Raises:
        ValueError: if ``features`` is not a non-empty 2-D tensor (with unit
            rows for ``"mmt"``), or an argument is out of range.
    """
    num = check_features(features)
    check_range("k1", k1, 1, num)
    check_range("k2", k2, 1, k1, "k1")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not 0 < cutoff <= 1:
        raise ValueError(f"cutoff must satisfy 0 < cutoff <= 1, got cutoff={cutoff}")
    if keep_smallest < 0:
        raise ValueError(f"keep_smallest must be >= 0, got {keep_smallest}")
    features = features.detach().float().contiguous()
    sq_norms = features.pow(2).sum(dim=1)

    if variant == "mmt":
        _check_unit_rows(sq_norms)
        knn_dist, rank, far = knn(features, min(k1 + 1, num), block_size, knn_backend, return_farthest=True)
        # A point whose farthest neighbour is itself (N = 1, or all rows equal) divides 0 by 0 in the
        # reference; dividing by the smallest normal float gives equal weights instead.
        divisor = far.clamp(min=torch.finfo(torch.float32).tiny)
    else:
        knn_dist, rank = knn(features, k1, block_size, knn_backend)
        divisor = None
    v = _encoding_vectors(features, rank.cpu().numpy(), k1, k2, divisor, sq_norms, knn_dist.cpu().numpy())

    rows, cols, dist, diag = min_sum_distances(v, cutoff, keep_smallest, triple_budget,
                                               workers=max(1, min(torch.get_num_threads(), MAX_WORKERS)))
    every = np.arange(num, dtype=np.int64)
    out_rows, out_cols = np.concatenate([rows, cols, every]), np.concatenate([cols, rows, every])
    out = sp.csr_matrix((np.concatenate([dist, dist, diag]), (out_rows, out_cols)), shape=(num, num))
    out.sort_indices()
    return out
