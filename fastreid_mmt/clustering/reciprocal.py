"""k-reciprocal encoding vectors ``V`` of the Jaccard distance, as sparse matrices.

Steps 2-5 of the re-ranking of Zhong et al. (CVPR 2017), from the neighbour
ranks of every point (self first):

2. ``R(i)``: the ``j`` in ``rank[i, :width]`` with ``i`` in ``rank[j, :width]``,
   once with ``width = k + 1`` and once with ``width = round(k / 2) + 1``
   (the "half" sets), each clipped to the ranks available.
3. Expansion set ``E(i)``: ``R(i)`` plus every ``R_half(c)``, ``c`` in ``R(i)``,
   with ``|R_half(c) & R(i)| > 2/3 |R_half(c)|``.
4. ``V[i, E(i)] = softmax(-|x_i - x_e|^2 / s_i)`` over ``E(i)`` (``s_i = 1``,
   or MMT's per-point maximum).
5. Query expansion (by the caller): ``V[i] <- mean(V[rank[i, :k2]])``.

The set bookkeeping is sparse algebra with scipy on the CPU: reciprocity is
``A * A.T``, the intersection sizes of step 3 are ``R @ R_half.T`` read on the
pattern of ``R``. The distances of step 4 come from the k-NN search where it
computed them (70-90% of the entries of ``E(i)`` on the benchmark's features,
:func:`known_entries`), the others from a sampled dense-dense product on the
features' device.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["neighbour_matrix", "reciprocal_mask", "expansion_pattern", "pattern_dots", "known_entries",
           "softmax_weights"]

TWO_THIRDS = 2.0 / 3.0  # the references' float threshold of step 3, in float64
TILE_BYTES = 8 << 20  # features per column tile of the sampled product on the CPU (fits a last-level cache)


def neighbour_matrix(rank: np.ndarray, mask: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """CSR matrix with ``out[i, rank[i, a]] = values[i, a]`` where ``mask[i, a]``.

    Args:
        rank: (N, K) int64 neighbour indices (no repeats within a row).
        mask: (N, w) bool entries to keep, ``w <= K``.
        values: (N, w) values to store (non-zero).

    Returns:
        (N, N) CSR matrix, indices unsorted.
    """
    num, width = mask.shape
    indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    return sp.csr_matrix((values[mask], rank[:, :width][mask], indptr), shape=(num, num))


def reciprocal_mask(rank: np.ndarray, width: int) -> np.ndarray:
    """Marks the k-reciprocal neighbours among the first ``width`` of each row.

    Args:
        rank: (N, K) int64 neighbour indices, self first.
        width: ``k + 1``; clipped to ``K`` as the references' slicing does.

    Returns:
        (N, min(width, K)) bool: ``out[i, a]`` iff ``i`` is among the first
        ``min(width, K)`` neighbours of ``rank[i, a]``.
    """
    num = rank.shape[0]
    width = min(width, rank.shape[1])
    every = np.ones((num, width), dtype=bool)
    slot = np.broadcast_to(np.arange(1, width + 1, dtype=np.int32), (num, width))
    forward = neighbour_matrix(rank, every, slot)  # forward[i, j] = 1 + position of j
    backward = neighbour_matrix(rank, every, np.ones((num, width), dtype=np.int32)).T
    both = forward.multiply(backward).tocsr()  # keeps the slot where j -> i too
    out = np.zeros((num, width), dtype=bool)
    out[np.repeat(np.arange(num), np.diff(both.indptr)), both.data - 1] = True
    return out


def expansion_pattern(rank: np.ndarray, recip: np.ndarray, recip_half: np.ndarray) -> sp.csr_matrix:
    """Sparsity pattern of the expansion sets ``E(i)`` (step 3).

    Args:
        rank: (N, K) int64 neighbour indices.
        recip: (N, w) bool reciprocal mask of the full sets ``R(i)``.
        recip_half: (N, wh) bool mask of the half sets ``R_half``.

    Returns:
        (N, N) CSR whose row ``i`` stores ``E(i)``, sorted indices.
    """
    own = neighbour_matrix(rank, recip, np.ones(recip.shape, dtype=np.float32))
    half = neighbour_matrix(rank, recip_half, np.ones(recip_half.shape, dtype=np.float32))
    # inter[i, c] = |R(i) & R_half(c)|, kept for the candidates c in R(i).
    inter = own.multiply(own @ half.T.tocsr()).tocsr()
    rows = np.repeat(np.arange(rank.shape[0]), np.diff(inter.indptr))
    size = np.diff(half.indptr)[inter.indices].astype(np.float64)
    grow = inter.data > TWO_THIRDS * size
    chosen = sp.csr_matrix(
        (np.ones(int(grow.sum()), dtype=np.float32), (rows[grow], inter.indices[grow])), shape=own.shape
    )
    pattern = (own + chosen @ half).tocsr()  # R(i) united with the chosen R_half(c)
    pattern.sort_indices()
    return pattern


def _dots(features, indptr, cols, others):
    """``features[i] . others[c]`` on a CSR pattern (N rows, ``len(others)`` columns)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        sampled = torch.sparse_csr_tensor(
            indptr, cols, torch.zeros(cols.numel(), dtype=features.dtype, device=features.device),
            size=(features.shape[0], others.shape[0]), check_invariants=False,
        )
        return torch.sparse.sampled_addmm(sampled, features, others.t(), beta=0.0).values()


def pattern_dots(features: torch.Tensor, pattern: sp.csr_matrix) -> torch.Tensor:
    """``x_i . x_e`` for every entry ``(i, e)`` of a CSR pattern (a sampled dense-dense product).

    On the CPU the columns go in tiles of ``TILE_BYTES`` of features: the product reads
    ``x_e`` from memory once per entry, and a tile's rows stay in cache. Each dot is the
    same kernel on the same two rows, so the values do not depend on the tiling, bit for
    bit. The tiles' bookkeeping is numpy's (one thread): the product alone is torch's.

    Args:
        features: (N, D) float32 on CPU or CUDA.
        pattern: (N, N) CSR pattern.

    Returns:
        (P,) dots on the features' device, in the pattern's order.
    """
    num, dim = features.shape
    device = features.device
    width = max(1, TILE_BYTES // (features.element_size() * dim))
    if device.type != "cpu" or width >= num:
        indptr = torch.from_numpy(pattern.indptr.astype(np.int64)).to(device)
        return _dots(features, indptr, torch.from_numpy(pattern.indices.astype(np.int64)).to(device), features)
    tiles = -(-num // width)
    rows = np.repeat(np.arange(num, dtype=np.int64), np.diff(pattern.indptr))
    tile = pattern.indices.astype(np.int64) // width
    order = np.argsort(tile, kind="stable")  # by tile, then in the pattern's (row-major) order
    rows, tile = rows[order], tile[order]
    cols = torch.from_numpy(pattern.indices[order] - tile * width).long()
    bounds = np.searchsorted(tile, np.arange(tiles + 1))
    dots = torch.empty(pattern.nnz, dtype=features.dtype)
    indptr = np.zeros(num + 1, dtype=np.int64)
    for t in range(tiles):
        lo, hi = int(bounds[t]), int(bounds[t + 1])
        if hi > lo:
            np.cumsum(np.bincount(rows[lo:hi], minlength=num), out=indptr[1:])
            dots[lo:hi] = _dots(features, torch.from_numpy(indptr), cols[lo:hi], features[t * width : (t + 1) * width])
    out = torch.empty_like(dots)
    out[torch.from_numpy(order)] = dots
    return out


def known_entries(pattern: sp.csr_matrix, rank: np.ndarray, values: np.ndarray):
    """Entries of a pattern whose value a k-NN search already computed, in either direction.

    ``(i, e)`` is known when ``e`` is among ``rank[i]`` (value ``values[i, a]``) or, failing
    that, ``i`` is among ``rank[e]`` (the distance being symmetric).

    Args:
        pattern: (N, N) CSR with sorted indices.
        rank: (N, K) int64 neighbour indices (no repeats within a row).
        values: (N, K) the search's values for them.

    Returns:
        (positions, known_values): int64 positions in the pattern's order and their values.
    """
    num, width = rank.shape
    slot = np.arange(1, rank.size + 1, dtype=np.float64).reshape(num, width)  # 1 + flat slot
    forward = neighbour_matrix(rank, np.ones(rank.shape, dtype=bool), slot)
    ids = sp.csr_matrix((np.arange(1, pattern.nnz + 1, dtype=np.float64), pattern.indices, pattern.indptr),
                        shape=pattern.shape)
    ones = sp.csr_matrix((np.ones(pattern.nnz), pattern.indices, pattern.indptr), shape=pattern.shape)
    flat = values.reshape(-1)
    found_pos, found_val = [], []
    for lookup in (forward.tocsr(), forward.T.tocsr()):
        lookup.sort_indices()
        # Same sparsity on both products (the intersection), so their data line up.
        hit_ids = ids.multiply(lookup.astype(bool)).tocsr()
        hit_slots = ones.multiply(lookup).tocsr()
        found_pos.append(hit_ids.data.astype(np.int64) - 1)
        found_val.append(flat[hit_slots.data.astype(np.int64) - 1])
    pos = np.concatenate(found_pos)
    pos, first = np.unique(pos, return_index=True)  # a pair found both ways: the forward value
    return pos, np.concatenate(found_val)[first]


def softmax_weights(features: torch.Tensor, pattern: sp.csr_matrix, divisor=None, sq_norms=None,
                    known=None) -> np.ndarray:
    """Row-wise softmax of negative (scaled) squared distances over a pattern (step 4).

    Args:
        features: (N, D) float32, on CPU or CUDA.
        pattern: (N, N) CSR pattern with sorted indices.
        divisor: optional (N,) positive tensor on the features' device; row
            ``i`` uses ``|x_i - x_e|^2 / divisor[i]``.
        sq_norms: optional (N,) ``features.pow(2).sum(dim=1)``, if the caller has it.
        known: optional ``(rank, sq_dist)``, (N, K) numpy neighbour indices and
            their squared distances from a k-NN search: entries of the pattern
            found there (either way round) take that value, the others a
            sampled dot product. Both are the same float32 expression
            ``|x_i|^2 + |x_e|^2 - 2 x_i . x_e`` (the search clamps at zero), so
            they agree to rounding (about 1e-6 on unit rows).

    Returns:
        (P,) float32 weights in the pattern's order, one per stored entry,
        summing to one over each row.
    """
    num = features.shape[0]
    device = features.device
    indptr = torch.from_numpy(pattern.indptr.astype(np.int64)).to(device)
    cols = torch.from_numpy(pattern.indices.astype(np.int64)).to(device)
    rows = torch.repeat_interleave(torch.arange(num, device=device), indptr.diff())
    if sq_norms is None:
        sq_norms = features.pow(2).sum(dim=1)
    if known is None:
        sq_dist = sq_norms[rows] + sq_norms[cols] - 2.0 * pattern_dots(features, pattern)
    else:
        pos, values = known_entries(pattern, *known)
        missing = np.ones(pattern.nnz, dtype=bool)
        missing[pos] = False
        sq_dist = torch.empty(pattern.nnz, dtype=features.dtype, device=device)
        sq_dist[torch.from_numpy(pos).to(device)] = torch.from_numpy(values).to(device, features.dtype)
        if missing.any():
            rest = torch.from_numpy(np.flatnonzero(missing)).to(device)
            sub_indptr = np.concatenate([[0], np.cumsum(missing)])[pattern.indptr]
            sub = sp.csr_matrix((np.ones(rest.numel(), dtype=np.float32), pattern.indices[missing], sub_indptr),
                                shape=pattern.shape)
            sq_dist[rest] = sq_norms[rows[rest]] + sq_norms[cols[rest]] - 2.0 * pattern_dots(features, sub)
    neg = -sq_dist
    if divisor is not None:
        neg = neg / divisor[rows]
    row_max = torch.full((num,), float("-inf"), dtype=neg.dtype, device=device)
    row_max.scatter_reduce_(0, rows, neg, reduce="amax")
    expo = torch.exp(neg - row_max[rows])
    row_sum = torch.zeros(num, dtype=neg.dtype, device=device).index_add_(0, rows, expo)
    return (expo / row_sum[rows]).cpu().numpy()
