"""Sparse k-reciprocal Jaccard distance (Zhong et al., CVPR 2017).

:func:`jaccard_distance` returns the matrix that fast-reid's dense
``fastreid.utils.compute_dist.compute_jaccard_distance(features, k1, k2,
search_option=3)`` returns, as a ``scipy.sparse.csr_matrix`` that stores every
pair at distance below one. Memory stays ``O(N * k)``: nothing ``N x N`` is
built, and the only loops run over blocks of rows.

The steps follow the reference exactly:

1. ``rank``: the ``k1`` nearest neighbours of each point, itself first.
2. ``R(i)``: the ``j`` in ``rank[i, :k+1]`` with ``i`` in ``rank[j, :k+1]``,
   for ``k = k1`` and ``k = round(k1 / 2)`` (the "half" sets).
3. Expansion set ``E(i)``: ``R(i)`` plus every ``R_half(c)``, ``c`` in
   ``R(i)``, with ``|R_half(c) & R(i)| > 2/3 |R_half(c)|``.
4. ``V[i, E(i)] = softmax(-|x_i - x_e|^2)`` over ``E(i)``.
5. Query expansion: ``V[i] <- mean(V[rank[i, :k2]])`` (skipped if ``k2 == 1``).
6. ``m(i, j) = sum_l min(V[i, l], V[j, l])`` and
   ``d(i, j) = max(0, 1 - m / (2 - m))``.

The heavy dense math (the k-NN search of step 1 and the distances of step 4,
a sampled dense-dense product) runs on the features' device. The set
bookkeeping is sparse algebra with scipy on the CPU: reciprocity is
``A * A.T``, the intersection sizes of step 3 are ``R @ R_half.T`` read on the
pattern of ``R``, query expansion is a sparse averaging product. The sum of
minima enumerates ``(i, l, j)`` triples with ``j >= i`` through the columns of
``V``, reduces duplicate ``(i, j)`` keys with scipy's counting-sort
conversions, then mirrors the upper triangle.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from .checks import check_features, check_range
from .knn import knn

__all__ = ["jaccard_distance"]


def _neighbour_matrix(rank: np.ndarray, mask: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """CSR matrix with ``out[i, rank[i, a]] = values[i, a]`` where ``mask[i, a]``.

    Args:
        rank: (N, w) int64 neighbour indices (no repeats within a row).
        mask: (N, w) bool entries to keep.
        values: (N, w) values to store (non-zero).

    Returns:
        (N, N) CSR matrix, indices unsorted.
    """
    num, width = mask.shape
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    return sp.csr_matrix((values[mask], rank[:, :width][mask], indptr), shape=(num, num))


def _reciprocal_mask(rank: np.ndarray, width: int) -> np.ndarray:
    """Marks the k-reciprocal neighbours among the first ``width`` of each row.

    Args:
        rank: (N, K) int64 neighbour indices, self first.
        width: ``k + 1``; clipped to ``K`` as in the reference's slicing.

    Returns:
        (N, min(width, K)) bool: ``out[i, a]`` iff ``i`` is among the first
        ``min(width, K)`` neighbours of ``rank[i, a]``.
    """
    num = rank.shape[0]
    width = min(width, rank.shape[1])
    every = np.ones((num, width), dtype=bool)
    slot = np.broadcast_to(np.arange(1, width + 1, dtype=np.int32), (num, width))
    forward = _neighbour_matrix(rank, every, slot)  # forward[i, j] = 1 + position of j
    backward = _neighbour_matrix(rank, every, np.ones((num, width), dtype=np.int32)).T
    both = forward.multiply(backward).tocsr()  # keeps the slot where j -> i too
    out = np.zeros((num, width), dtype=bool)
    out[np.repeat(np.arange(num), np.diff(both.indptr)), both.data - 1] = True
    return out


def _expansion_pattern(rank: np.ndarray, recip: np.ndarray, recip_half: np.ndarray) -> sp.csr_matrix:
    """Sparsity pattern of the expansion sets ``E(i)``.

    Args:
        rank: (N, K) int64 neighbour indices.
        recip: (N, K) bool reciprocal mask for ``k = k1``: the sets ``R(i)``.
        recip_half: (N, Kh) bool mask for ``k = round(k1 / 2)``: ``R_half``.

    Returns:
        (N, N) CSR whose row ``i`` stores ``E(i)``, sorted indices.
    """
    own = _neighbour_matrix(rank, recip, np.ones(recip.shape, dtype=np.float32))
    half = _neighbour_matrix(rank, recip_half, np.ones(recip_half.shape, dtype=np.float32))
    # inter[i, c] = |R(i) & R_half(c)|, kept for the candidates c in R(i).
    inter = own.multiply(own @ half.T.tocsr()).tocsr()
    rows = np.repeat(np.arange(rank.shape[0]), np.diff(inter.indptr))
    size = np.diff(half.indptr)[inter.indices].astype(np.float64)
    two_thirds = 2.0 / 3.0  # the reference's float threshold, in float64
    grow = inter.data > two_thirds * size
    chosen = sp.csr_matrix(
        (np.ones(int(grow.sum()), dtype=np.float32), (rows[grow], inter.indices[grow])), shape=own.shape
    )
    pattern = (own + chosen @ half).tocsr()  # R(i) united with the chosen R_half(c)
    pattern.sort_indices()
    return pattern


def _softmax_weights(features: torch.Tensor, pattern: sp.csr_matrix) -> np.ndarray:
    """Row-wise softmax of negative squared distances over a sparse pattern.

    Args:
        features: (N, D) float32, on CPU or CUDA.
        pattern: (N, N) CSR pattern with sorted indices.

    Returns:
        (P,) float32 weights in the pattern's order, one per stored entry,
        summing to one over each row.
    """
    num = features.shape[0]
    device = features.device
    indptr = torch.from_numpy(pattern.indptr.astype(np.int64)).to(device)
    cols = torch.from_numpy(pattern.indices.astype(np.int64)).to(device)
    rows = torch.repeat_interleave(torch.arange(num, device=device), indptr.diff())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        sampled = torch.sparse_csr_tensor(
            indptr, cols, torch.zeros(cols.numel(), dtype=features.dtype, device=device),
            size=(num, num), check_invariants=False,
        )
        # Sampled dense-dense product: x_i . x_e on the pattern only.
        dots = torch.sparse.sampled_addmm(sampled, features, features.t(), beta=0.0).values()
    sq_norms = features.pow(2).sum(dim=1)
    neg = -(sq_norms[rows] + sq_norms[cols] - 2.0 * dots)
    row_max = torch.full((num,), float("-inf"), dtype=neg.dtype, device=device)
    row_max.scatter_reduce_(0, rows, neg, reduce="amax")
    expo = torch.exp(neg - row_max[rows])
    row_sum = torch.zeros(num, dtype=neg.dtype, device=device).index_add_(0, rows, expo)
    return (expo / row_sum[rows]).cpu().numpy()


def _upper_min_sums(v: sp.csr_matrix, triple_budget: int) -> sp.csr_matrix:
    """``m(i, j) = sum_l min(v[i, l], v[j, l])`` for ``j >= i``.

    Args:
        v: (N, N) float32 CSR with non-negative values.
        triple_budget: approximate number of ``(i, l, j)`` triples per block.

    Returns:
        (N, N) float32 CSR, upper triangle with diagonal, sorted indices.
    """
    num = v.shape[0]
    nnz = v.nnz
    ids = sp.csr_matrix((np.arange(nnz, dtype=np.int64), v.indices, v.indptr), shape=v.shape)
    col_major = ids.tocsc()  # rows ascending inside each column
    csc_rows = col_major.indices
    csc_vals = v.data[col_major.data]
    csc_pos = np.empty(nnz, dtype=np.int64)
    csc_pos[col_major.data] = np.arange(nnz, dtype=np.int64)
    # Partners j >= i of entry (i, l): positions csc_pos .. end of column l.
    counts = col_major.indptr[1:].astype(np.int64)[v.indices] - csc_pos
    cum = np.concatenate([[0], np.cumsum(counts)])
    row_cum = cum[v.indptr]  # (N + 1,) triples before each row
    blocks = []
    start = 0
    while start < num:
        target = row_cum[start] + triple_budget
        stop = int(np.searchsorted(row_cum, target, side="right")) - 1
        stop = min(max(stop, start + 1), num)
        lo, hi = v.indptr[start], v.indptr[stop]
        cnt = counts[lo:hi]
        total = int(cum[hi] - cum[lo])
        shift = np.repeat(csc_pos[lo:hi] - (cum[lo:hi] - cum[lo]), cnt)
        pos = shift + np.arange(total, dtype=np.int64)
        mins = np.repeat(v.data[lo:hi], cnt)
        np.minimum(mins, csc_vals[pos], out=mins)
        part = sp.csr_matrix(
            (mins, csc_rows[pos], row_cum[start : stop + 1] - row_cum[start]),
            shape=(stop - start, num),
        )
        part = part.tocsc()  # counting sort: duplicates of (i, j) now adjacent
        part.sum_duplicates()  # linear merge, keeps zero sums
        blocks.append(part.tocsr())
        start = stop
    return sp.vstack(blocks, format="csr")


def _mirror_upper(upper: sp.csr_matrix) -> sp.csr_matrix:
    """Symmetric CSR from its upper triangle, keeping sorted indices.

    Args:
        upper: (N, N) CSR holding entries with ``col >= row``, sorted indices.

    Returns:
        (N, N) CSR with the strict upper part copied below the diagonal.
    """
    num = upper.shape[0]
    lower = upper.tocsc()  # column i lists rows j <= i, ascending
    lower_cols = np.repeat(np.arange(num), np.diff(lower.indptr))
    strict = lower.indices < lower_cols
    low_cnt = np.bincount(lower_cols[strict], minlength=num)
    up_cnt = np.diff(upper.indptr)
    indptr = np.concatenate([[0], np.cumsum(low_cnt + up_cnt)])
    total = int(indptr[-1])
    indices = np.empty(total, dtype=upper.indices.dtype)
    data = np.empty(total, dtype=upper.data.dtype)
    # Row i: its strict lower entries (cols j < i) first, then its upper ones.
    low_dst = np.repeat(indptr[:-1], low_cnt) + (
        np.arange(int(low_cnt.sum())) - np.repeat(np.cumsum(low_cnt) - low_cnt, low_cnt)
    )
    up_dst = np.repeat(indptr[:-1] + low_cnt, up_cnt) + (
        np.arange(upper.nnz) - np.repeat(upper.indptr[:-1], up_cnt)
    )
    indices[low_dst] = lower.indices[strict]
    data[low_dst] = lower.data[strict]
    indices[up_dst] = upper.indices
    data[up_dst] = upper.data
    out = sp.csr_matrix((data, indices, indptr), shape=upper.shape)
    out.has_sorted_indices = True
    return out


@torch.no_grad()
def jaccard_distance(
    features: torch.Tensor,
    k1: int = 30,
    k2: int = 6,
    block_size: int = 1024,
    knn_backend: str = "torch",
    triple_budget: int = 1 << 22,
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance between all rows of ``features``.

    Args:
        features: (N, D) float tensor on CPU or CUDA; used in float32.
        k1: neighbourhood size of the k-reciprocal sets, ``1 <= k1 <= N``.
        k2: query-expansion size, ``1 <= k2 <= k1``.
        block_size: rows per block in the k-NN search.
        knn_backend: ``"torch"`` or ``"faiss"``, passed to :func:`knn`.
        triple_budget: ``(i, l, j)`` triples per block in the sum of minima;
            bounds the temporary memory (about 40 bytes per triple).

    Returns:
        (N, N) float32 ``scipy.sparse.csr_matrix`` with sorted indices. Every
        pair with distance below one is stored, explicit zeros included;
        absent pairs have distance one. It is symmetric, and each row stores
        its diagonal (close to 0). Values match the reference up to float32
        rounding (about 1e-6): the sums of minima and the query expansion add
        in the reference's order, but the softmax weights come from other
        kernels, so pairs at distance ~0 may read 0 in one and ~1e-7 in the
        other.

    Raises:
        ValueError: if ``features`` is not a non-empty 2-D tensor or ``k1``,
            ``k2`` are out of range.
    """
    num = check_features(features)
    check_range("k1", k1, 1, num)
    check_range("k2", k2, 1, k1, "k1")
    features = features.detach().float().contiguous()

    _, rank = knn(features, k1, block_size=block_size, backend=knn_backend)
    k_half = int(np.around(k1 / 2))
    rank = rank.cpu().numpy()
    recip = _reciprocal_mask(rank, k1 + 1)
    recip_half = _reciprocal_mask(rank, k_half + 1)
    v = _expansion_pattern(rank, recip, recip_half)
    v.data = _softmax_weights(features, v)
    if k2 > 1:
        first = rank[:, :k2].ravel()
        expand = sp.csr_matrix(
            (np.ones(first.size, dtype=np.float32), first, np.arange(0, first.size + 1, k2)),
            shape=(num, num),
        )
        v = expand @ v  # sums in the reference's order, then the mean
        v.data /= np.float32(k2)
    v.sort_indices()

    sums = _mirror_upper(_upper_min_sums(v, triple_budget))
    m = sums.data
    dist = np.float32(1.0) - m / (np.float32(2.0) - m)
    np.maximum(dist, np.float32(0.0), out=dist)
    out = sp.csr_matrix((dist.astype(np.float32, copy=False), sums.indices, sums.indptr), shape=(num, num))
    out.has_sorted_indices = True
    return out
