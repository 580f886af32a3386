"""Exact k-nearest-neighbour search in squared Euclidean distance.

The search runs on the device of the input tensor. The ``"torch"`` backend
computes one block of rows against the later points at a time with a matrix
product (the distance matrix being symmetric, the block serves the later rows
too) and keeps, per row, the entries below its running k-th distance. The
peak extra memory is a few ``block_size x N`` buffers; an ``N x N`` matrix is
never built. The ``"faiss"`` backend uses ``faiss.IndexFlatL2`` (on a GPU when
faiss sees one).

Every row starts with the point itself at distance 0, whatever the ties: this
is the convention of the k-reciprocal re-ranking code, which assumes that a
point is its own first neighbour.

On request the search also returns each point's largest squared distance to
any point (MMT's Jaccard variant divides by it): the ``"torch"`` backend reads
it from the tiles it computes anyway, the ``"faiss"`` backend runs one more
blocked pass (:func:`farthest`).
"""

from typing import Optional, Tuple

import torch

from .checks import check_features, check_range

__all__ = ["knn", "farthest"]

_BACKENDS = ("torch", "faiss")
_GROUP = 32  # candidates summarised by one minimum when filtering a tile


def _validate(features: torch.Tensor, k: int, block_size: int, backend: str) -> None:
    check_range("k", k, 1, check_features(features))
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def _keep_smallest(
    best_val: torch.Tensor, best_idx: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor, nbrs: torch.Tensor
) -> None:
    """Keeps, in place, the ``k`` smallest of the running and new candidates.

    Args:
        best_val: (N, k) running smallest distances, ascending.
        best_idx: (N, k) their indices.
        rows: (R,) int64 rows to update.
        vals: (R, c) new candidate distances.
        nbrs: (R, c) their indices.
    """
    k = best_val.shape[1]
    all_val = torch.cat([best_val[rows], vals], dim=1)
    all_idx = torch.cat([best_idx[rows], nbrs], dim=1)
    top_val, top_pos = all_val.topk(k, dim=1, largest=False, sorted=True)
    best_val[rows] = top_val
    best_idx[rows] = all_idx.gather(1, top_pos)


def _merge_tile(
    best_val: torch.Tensor,
    best_idx: torch.Tensor,
    targets: torch.Tensor,
    grouped: torch.Tensor,
    group_min: torch.Tensor,
    offset: int,
) -> None:
    """Merges a tile of distances into the running k nearest neighbours.

    Rows whose running k-th distance is still infinite take a dense ``topk``.
    The others compare the minimum of each group of candidates with their
    k-th distance and only gather the groups, then the entries, that can
    improve it: after the first blocks these are few.

    Args:
        best_val: (N, k) running smallest distances per row, ascending.
        best_idx: (N, k) their neighbour indices.
        targets: (T,) int64 global rows served by the tile.
        grouped: (T, G, g) distances (any strides) to the candidates
            ``offset .. offset + G * g``; padding entries are ``+inf``.
        group_min: (T, G) minimum of ``grouped`` over its last dimension.
        offset: global index of the first candidate.
    """
    k = best_val.shape[1]
    num_targets, _, group = grouped.shape
    device = grouped.device
    bound = best_val[targets, k - 1]
    dense = torch.isinf(bound)
    if bool(dense.any()):
        # A transposed tile is copied to rows first: topk and masks are slow on it.
        sub = grouped.flatten(1).contiguous() if bool(dense.all()) else grouped[dense].flatten(1)
        vals, pos = sub.topk(min(k, sub.shape[1]), dim=1, largest=False, sorted=True)
        _keep_smallest(best_val, best_idx, targets[dense], vals, pos + offset)
        bound = bound.masked_fill(dense, float("-inf"))  # merged already
    hit_t, hit_g = (group_min < bound.unsqueeze(1)).nonzero(as_tuple=True)
    if hit_t.numel() == 0:
        return
    vals = grouped[hit_t, hit_g]  # (H, g)
    hit, member = (vals < bound[hit_t].unsqueeze(1)).nonzero(as_tuple=True)
    cand_t = hit_t[hit]  # non-decreasing
    counts = torch.bincount(cand_t, minlength=num_targets)
    slot = torch.arange(cand_t.numel(), device=device) - (counts.cumsum(0) - counts)[cand_t]
    touched = counts.nonzero().flatten()
    remap = torch.empty_like(counts)
    remap[touched] = torch.arange(touched.numel(), device=device)
    width = int(counts.max())
    new_val = torch.full((touched.numel(), width), float("inf"), dtype=grouped.dtype, device=device)
    new_idx = torch.zeros(touched.numel(), width, dtype=torch.long, device=device)
    new_val[remap[cand_t], slot] = vals[hit, member]
    new_idx[remap[cand_t], slot] = hit_g[hit] * group + member + offset
    _keep_smallest(best_val, best_idx, targets[touched], new_val, new_idx)


def _knn_torch(
    features: torch.Tensor, k: int, block_size: int, with_far: bool = False, group: int = _GROUP
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Blocked matmul search using the symmetry of the distances.

    Row block ``I`` is compared with the columns ``c >= start(I)`` only: the
    tile serves its own rows and, read column-wise, the later rows, which
    halves the matrix products. Each side is merged by :func:`_merge_tile`
    with groups of ``group`` candidates. With ``with_far`` the row and column
    maxima of every tile give each point's largest distance. See :func:`knn`
    for shapes; the third output is None without ``with_far``.
    """
    num = features.shape[0]
    device = features.device
    sq_norms = features.pow(2).sum(dim=1)  # (N,)
    features_t = features.t().contiguous()  # (D, N)
    block = min(block_size, num)
    pad = lambda size: -(-size // group) * group  # noqa: E731 (rounds up to a multiple of group)
    buffer = torch.empty(pad(block) * pad(num), dtype=features.dtype, device=device)
    best_val = torch.full((num, k), float("inf"), dtype=features.dtype, device=device)
    best_idx = torch.zeros(num, k, dtype=torch.long, device=device)
    all_rows = torch.arange(num, device=device)
    far = torch.zeros(num, dtype=features.dtype, device=device) if with_far else None
    for start in range(0, num, block):
        stop = min(start + block, num)
        rows, cols = stop - start, num - start
        # tile[r, c] = |x_r|^2 + |x_c|^2 - 2 x_r.x_c for r in I, c >= start.
        tile = buffer[: pad(rows) * pad(cols)].view(pad(rows), pad(cols))
        tile[rows:].fill_(float("inf"))
        tile[:rows, cols:].fill_(float("inf"))
        dist = tile[:rows, :cols]
        dist.copy_(sq_norms[start:].unsqueeze(0).expand(rows, cols))
        dist.addmm_(features[start:stop], features_t[:, start:], beta=1.0, alpha=-2.0)
        dist.add_(sq_norms[start:stop].unsqueeze(1))
        if with_far:  # pairs (I, c >= start): rows of I, and columns for the later points
            torch.maximum(far[start:stop], dist.amax(dim=1), out=far[start:stop])
            torch.maximum(far[start:], dist.amax(dim=0), out=far[start:])
        local = torch.arange(rows, device=device)
        dist[local, local] = float("-inf")  # self first, before any tie
        own = tile[:rows].unflatten(1, (-1, group))  # (rows, G, group)
        _merge_tile(best_val, best_idx, all_rows[start:stop], own, own.amin(dim=2), start)
        if stop < num:
            later = tile.t()[rows:cols].unflatten(1, (-1, group))  # (N - stop, G', group)
            # Reduce in the tile's memory order, then transpose the small result.
            later_min = tile.unflatten(0, (-1, group)).amin(dim=1).t()[rows:cols]
            _merge_tile(best_val, best_idx, all_rows[stop:], later, later_min, start)
    best_val[:, 0] = 0.0
    best_val.clamp_(min=0.0)
    return best_val, best_idx, far


@torch.no_grad()
def farthest(features: torch.Tensor, block_size: int = 1024) -> torch.Tensor:
    """Largest squared Euclidean distance from each row to any row.

    One blocked pass of matrix products on the features' device; memory is a
    ``block_size x N`` tile.

    Args:
        features: (N, D) float32 tensor.
        block_size: rows per tile.

    Returns:
        (N,) float32 ``max_j |x_i - x_j|^2`` (0 for a single row).
    """
    num = check_features(features)
    features = features.detach().float().contiguous()
    sq_norms = features.pow(2).sum(dim=1)
    far = torch.zeros(num, dtype=features.dtype, device=features.device)
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        tile = torch.addmm(sq_norms.unsqueeze(0), features[start:stop], features.t(), beta=1.0, alpha=-2.0)
        tile.add_(sq_norms[start:stop].unsqueeze(1))
        far[start:stop] = tile.amax(dim=1).clamp(min=0.0)
    return far


def _knn_faiss(features: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``faiss.IndexFlatL2`` search; see :func:`knn` for shapes."""
    import faiss  # optional dependency, imported lazily

    num, dim = features.shape
    array = features.detach().cpu().contiguous().numpy()
    if faiss.get_num_gpus() > 0:
        resources = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlatL2(resources, dim)
    else:
        index = faiss.IndexFlatL2(dim)
    index.add(array)
    dist_np, idx_np = index.search(array, k)
    dist = torch.from_numpy(dist_np)
    idx = torch.from_numpy(idx_np).long()
    # Put the point itself first: drop it where faiss returned it elsewhere,
    # otherwise drop the last column, then prepend it at distance 0.
    self_ids = torch.arange(num).unsqueeze(1)
    keep = idx != self_ids
    keep[:, -1] &= ~keep.all(dim=1)
    idx = torch.cat([self_ids, idx[keep].view(num, k - 1)], dim=1)
    dist = torch.cat([torch.zeros(num, 1), dist[keep].view(num, k - 1).clamp(min=0.0)], dim=1)
    return dist.to(features.device), idx.to(features.device)


@torch.no_grad()
def knn(
    features: torch.Tensor,
    k: int,
    block_size: int = 1024,
    backend: str = "torch",
    return_farthest: bool = False,
):
    """Exact k nearest neighbours of every row among all rows.

    Args:
        features: (N, D) float tensor on CPU or CUDA; converted to float32.
        k: number of neighbours per row, self included, ``1 <= k <= N``.
        block_size: rows per ``(block_size, N)`` distance tile (``"torch"``
            backend only); the tile and its temporaries take a few times
            ``4 * block_size * N`` bytes.
        backend: ``"torch"`` (blocked matmul on the tensor's device) or
            ``"faiss"`` (``IndexFlatL2``, GPU index when faiss sees a GPU).
        return_farthest: also return each row's largest squared distance.

    Returns:
        dist: (N, k) float32 squared Euclidean distances, ascending per row,
            on the input's device; ``dist[:, 0] == 0``.
        idx: (N, k) int64 neighbour indices on the input's device;
            ``idx[i, 0] == i``.
        far: (N,) float32 ``max_j |x_i - x_j|^2``, only with
            ``return_farthest``.

    Raises:
        ValueError: on a non-2-D input, ``k`` outside ``[1, N]``, a
            non-positive ``block_size`` or an unknown backend.
    """
    _validate(features, k, block_size, backend)
    features = features.detach().float().contiguous()
    if backend == "faiss":
        dist, idx = _knn_faiss(features, k)
        far = farthest(features, block_size) if return_farthest else None
    else:
        dist, idx, far = _knn_torch(features, k, block_size, with_far=return_farthest)
    return (dist, idx, far.clamp_(min=0.0)) if return_farthest else (dist, idx)
