"""Exact k-nearest-neighbour search in squared Euclidean distance.

The search runs on the device of the input tensor. The ``"torch"`` backend
computes one block of rows against the later points at a time with a matrix
product (the distance matrix being symmetric, the block serves the later rows
too) and keeps, per row, the entries below its running k-th distance. The
peak extra memory is a few ``block_size x N`` buffers; an ``N x N`` matrix is
never built. The
``"faiss"`` backend uses ``faiss.IndexFlatL2`` (on a GPU when faiss sees one).

Every row starts with the point itself at distance 0, whatever the ties: this
is the convention of the k-reciprocal re-ranking code, which assumes that a
point is its own first neighbour.
"""

from typing import Tuple

import torch

__all__ = ["knn"]

_BACKENDS = ("torch", "faiss")


def _validate(features: torch.Tensor, k: int, block_size: int, backend: str) -> None:
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"features must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {tuple(features.shape)}")
    num = features.shape[0]
    if num < 1:
        raise ValueError("features must contain at least one row")
    if not 1 <= k <= num:
        raise ValueError(f"k must satisfy 1 <= k <= N, got k={k} with N={num}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def _merge_rows(
    best_val: torch.Tensor, best_idx: torch.Tensor, rows: torch.Tensor, dist: torch.Tensor, col_offset: int
) -> None:
    """Merges the entries of ``dist`` below each row's running k-th distance.

    Rows whose running k-th distance is still infinite take a dense ``topk``;
    the others only gather the few entries that can enter their top k.

    Args:
        best_val: (N, k) running smallest distances per row, ascending.
        best_idx: (N, k) their neighbour indices.
        rows: (R,) int64 global row of each row of ``dist``.
        dist: (R, W) distances to the columns ``col_offset .. col_offset + W``.
        col_offset: global index of the first column of ``dist``.
    """
    k = best_val.shape[1]
    bound = best_val[rows, k - 1]
    dense = torch.isinf(bound)
    if bool(dense.any()):
        sub = dist[dense]
        vals, nbrs = sub.topk(min(k, sub.shape[1]), dim=1, largest=False, sorted=True)
        _keep_smallest(best_val, best_idx, rows[dense], vals, nbrs + col_offset)
        bound = bound.masked_fill(dense, float("-inf"))  # merged already
    hit_row, hit_col = (dist < bound.unsqueeze(1)).nonzero(as_tuple=True)
    if hit_row.numel() == 0:
        return
    counts = torch.bincount(hit_row, minlength=rows.shape[0])
    width = int(counts.max())
    slot = torch.arange(hit_row.numel(), device=dist.device) - (counts.cumsum(0) - counts)[hit_row]
    touched = counts.nonzero().flatten()
    remap = torch.empty_like(counts)
    remap[touched] = torch.arange(touched.numel(), device=dist.device)
    vals = torch.full((touched.numel(), width), float("inf"), dtype=dist.dtype, device=dist.device)
    nbrs = torch.zeros(touched.numel(), width, dtype=torch.long, device=dist.device)
    vals[remap[hit_row], slot] = dist[hit_row, hit_col]
    nbrs[remap[hit_row], slot] = hit_col + col_offset
    _keep_smallest(best_val, best_idx, rows[touched], vals, nbrs)


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


def _knn_torch(features: torch.Tensor, k: int, block_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Blocked matmul search using the symmetry of the distances.

    Row block ``I`` is compared with the columns ``c >= start(I)`` only: the
    block serves its own rows and, read column-wise, the later rows, which
    halves the matrix products. Instead of a ``topk`` over every block, each
    row keeps only the entries below its running k-th distance, which after
    the first blocks are few. See :func:`knn` for shapes.
    """
    num = features.shape[0]
    device = features.device
    sq_norms = features.pow(2).sum(dim=1)  # (N,)
    features_t = features.t().contiguous()  # (D, N)
    block = min(block_size, num)
    buffer = torch.empty(block * num, dtype=features.dtype, device=device)
    best_val = torch.full((num, k), float("inf"), dtype=features.dtype, device=device)
    best_idx = torch.zeros(num, k, dtype=torch.long, device=device)
    all_rows = torch.arange(num, device=device)
    for start in range(0, num, block):
        stop = min(start + block, num)
        rows, cols = stop - start, num - start
        # dist[r, c] = |x_r|^2 + |x_c|^2 - 2 x_r.x_c for r in I and c >= start.
        dist = buffer[: rows * cols].view(rows, cols)
        dist.copy_(sq_norms[start:].unsqueeze(0).expand(rows, cols))
        dist.addmm_(features[start:stop], features_t[:, start:], beta=1.0, alpha=-2.0)
        dist.add_(sq_norms[start:stop].unsqueeze(1))
        local = torch.arange(rows, device=device)
        dist[local, local] = float("-inf")  # self first, before any tie
        _merge_rows(best_val, best_idx, all_rows[start:stop], dist, start)
        if stop < num:
            _merge_rows(best_val, best_idx, all_rows[stop:], dist[:, rows:].t(), start)
    best_val[:, 0] = 0.0
    best_val.clamp_(min=0.0)
    return best_val, best_idx


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
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of every row among all rows.

    Args:
        features: (N, D) float tensor on CPU or CUDA; converted to float32.
        k: number of neighbours per row, self included, ``1 <= k <= N``.
        block_size: number of query rows per ``(block_size, N)`` score block
            (``"torch"`` backend only).
        backend: ``"torch"`` (blocked matmul + topk on the tensor's device) or
            ``"faiss"`` (``IndexFlatL2``, GPU index when faiss sees a GPU).

    Returns:
        dist: (N, k) float32 squared Euclidean distances, ascending per row,
            on the input's device; ``dist[:, 0] == 0``.
        idx: (N, k) int64 neighbour indices on the input's device;
            ``idx[i, 0] == i``.

    Raises:
        ValueError: on a non-2-D input, ``k`` outside ``[1, N]``, a
            non-positive ``block_size`` or an unknown backend.
    """
    _validate(features, k, block_size, backend)
    features = features.detach().float().contiguous()
    if backend == "faiss":
        return _knn_faiss(features, k)
    return _knn_torch(features, k, block_size)
