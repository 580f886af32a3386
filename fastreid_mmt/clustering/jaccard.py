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

Steps 1-4 run on the features' device; steps 5-6 use scipy on the CPU. The
sum of minima enumerates ``(i, l, j)`` triples with ``j >= i`` through the
columns of ``V``, reduces duplicate ``(i, j)`` keys with scipy's counting-sort
conversions, then mirrors the upper triangle.
"""

import numpy as np
import scipy.sparse as sp
import torch

from .knn import knn

__all__ = ["jaccard_distance"]


def _reciprocal_mask(rank: torch.Tensor, width: int, block_size: int) -> torch.Tensor:
    """Marks the k-reciprocal neighbours among the first ``width`` of each row.

    Args:
        rank: (N, K) int64 neighbour indices, self first.
        width: ``k + 1``; clipped to ``K`` as in the reference's slicing.
        block_size: rows per block.

    Returns:
        (N, min(width, K)) bool: ``out[i, a]`` iff ``i`` is among the first
        ``min(width, K)`` neighbours of ``rank[i, a]``.
    """
    num = rank.shape[0]
    fwd = rank[:, : min(width, rank.shape[1])]
    out = torch.empty(fwd.shape, dtype=torch.bool, device=rank.device)
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        back = fwd[fwd[start:stop]]  # (B, w, w)
        self_ids = torch.arange(start, stop, device=rank.device).view(-1, 1, 1)
        out[start:stop] = (back == self_ids).any(dim=2)
    return out


def _expansion_pairs(
    rank: torch.Tensor, recip: torch.Tensor, recip_half: torch.Tensor, block_size: int
) -> torch.Tensor:
    """Sorted flat keys ``i * N + e`` of the expansion sets ``E(i)``.

    Args:
        rank: (N, K) int64 neighbour indices.
        recip: (N, K) bool reciprocal mask for ``k = k1``.
        recip_half: (N, Kh) bool reciprocal mask for ``k = round(k1 / 2)``.
        block_size: rows per block.

    Returns:
        (P,) int64 keys, ascending and unique (so grouped by row ``i``).
    """
    num, width = recip.shape
    width_half = recip_half.shape[1]
    rank_half = rank[:, :width_half]
    two_thirds = 2.0 / 3.0  # the reference's float threshold, in float64
    keys = []
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        rows = stop - start
        cand = rank[start:stop, :width]  # (B, K)
        cand_ok = recip[start:stop]  # (B, K)
        own = torch.where(cand_ok, cand, torch.full_like(cand, -1))  # R(i), padded
        half_ok = recip_half[cand]  # (B, K, Kh)
        half = torch.where(half_ok, rank_half[cand], torch.full_like(half_ok, -2, dtype=rank.dtype))
        own_sorted = own.sort(dim=1).values
        flat = half.view(rows, width * width_half)
        pos = torch.searchsorted(own_sorted, flat).clamp_(max=width - 1)
        hits = (own_sorted.gather(1, pos) == flat).view(rows, width, width_half)
        inter = hits.sum(dim=2).double()
        size = half_ok.sum(dim=2).double()
        grow = cand_ok & (inter > two_thirds * size)  # (B, K)
        base = torch.arange(start, stop, device=rank.device).unsqueeze(1) * num
        k_own = (base + cand)[cand_ok]
        take = half_ok & grow.unsqueeze(2)
        k_half = (base.unsqueeze(2) + half)[take]
        keys.append(torch.unique(torch.cat([k_own, k_half])))
    return torch.cat(keys)


def _softmax_weights(
    features: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, chunk_elems: int
) -> torch.Tensor:
    """Row-wise softmax of negative squared distances over a sparse pattern.

    Args:
        features: (N, D) float32.
        rows: (P,) int64 row of each pair, grouped by row.
        cols: (P,) int64 column of each pair.
        chunk_elems: gathered floats per chunk, bounds the temporary memory.

    Returns:
        (P,) float32 weights, summing to one over each row.
    """
    num, dim = features.shape
    sq_norms = features.pow(2).sum(dim=1)
    dots = torch.empty(rows.shape[0], dtype=features.dtype, device=features.device)
    step = max(1, chunk_elems // max(dim, 1))
    for start in range(0, rows.shape[0], step):
        stop = start + step
        dots[start:stop] = (features[rows[start:stop]] * features[cols[start:stop]]).sum(dim=1)
    neg = -(sq_norms[rows] + sq_norms[cols] - 2.0 * dots)
    row_max = torch.full((num,), float("-inf"), dtype=neg.dtype, device=neg.device)
    row_max.scatter_reduce_(0, rows, neg, reduce="amax")
    expo = torch.exp(neg - row_max[rows])
    row_sum = torch.zeros(num, dtype=neg.dtype, device=neg.device).index_add_(0, rows, expo)
    return expo / row_sum[rows]


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
    chunk_elems: int = 1 << 22,
    triple_budget: int = 1 << 23,
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance between all rows of ``features``.

    Args:
        features: (N, D) float tensor on CPU or CUDA; used in float32.
        k1: neighbourhood size of the k-reciprocal sets, ``1 <= k1 <= N``.
        k2: query-expansion size, ``1 <= k2 <= k1``.
        block_size: rows per block in the k-NN and the neighbour-set steps.
        knn_backend: ``"torch"`` or ``"faiss"``, passed to :func:`knn`.
        chunk_elems: floats gathered per chunk when computing the weights.
        triple_budget: ``(i, l, j)`` triples per block in the sum of minima;
            bounds the temporary memory (about 40 bytes per triple).

    Returns:
        (N, N) float32 ``scipy.sparse.csr_matrix`` with sorted indices. Every
        pair with distance below one is stored, explicit zeros included;
        absent pairs have distance one. It is symmetric, and each row stores
        its diagonal (close to 0).

    Raises:
        ValueError: if ``features`` is not a non-empty 2-D tensor or ``k1``,
            ``k2`` are out of range.
    """
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be a 2-D torch.Tensor (N, D), got {shape}")
    num = features.shape[0]
    if not 1 <= k1 <= num:
        raise ValueError(f"k1 must satisfy 1 <= k1 <= N, got k1={k1} with N={num}")
    if not 1 <= k2 <= k1:
        raise ValueError(f"k2 must satisfy 1 <= k2 <= k1, got k2={k2} with k1={k1}")
    features = features.detach().float().contiguous()

    _, rank = knn(features, k1, block_size=block_size, backend=knn_backend)
    k_half = int(np.around(k1 / 2))
    recip = _reciprocal_mask(rank, k1 + 1, block_size)
    recip_half = _reciprocal_mask(rank, k_half + 1, block_size)
    keys = _expansion_pairs(rank, recip, recip_half, block_size)
    rows, cols = keys // num, keys % num
    weights = _softmax_weights(features, rows, cols, chunk_elems)

    row_counts = torch.bincount(rows, minlength=num).cpu().numpy()
    indptr = np.concatenate([[0], np.cumsum(row_counts)])
    index_type = np.int32 if keys.numel() < np.iinfo(np.int32).max else np.int64
    v = sp.csr_matrix(
        (weights.cpu().numpy(), cols.cpu().numpy().astype(index_type), indptr.astype(index_type)),
        shape=(num, num),
    )
    if k2 > 1:
        first = rank[:, :k2].cpu().numpy().ravel()
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
