"""Exact k-nearest-neighbour search in squared Euclidean distance.

The search runs on the device of the input tensor. The ``"torch"`` backend
computes one block of rows against all points at a time with a matrix
product followed by ``topk``, so the peak extra memory is
``block_size x N`` floats and an ``N x N`` matrix is never built. The
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


def _knn_torch(features: torch.Tensor, k: int, block_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Blocked matmul + topk search; see :func:`knn` for shapes."""
    num = features.shape[0]
    device = features.device
    sq_norms = features.pow(2).sum(dim=1)  # (N,)
    features_t = features.t().contiguous()  # (D, N)
    block = min(block_size, num)
    # Scores are |y|^2 - 2 x.y: the per-row constant |x|^2 does not change the
    # ranking and is added back to the k kept values only.
    scores = torch.empty(block, num, dtype=features.dtype, device=device)
    dist = torch.empty(num, k, dtype=features.dtype, device=device)
    idx = torch.empty(num, k, dtype=torch.long, device=device)
    for start in range(0, num, block):
        stop = min(start + block, num)
        rows = stop - start
        out = scores[:rows]
        out.copy_(sq_norms.unsqueeze(0).expand(rows, num))
        out.addmm_(features[start:stop], features_t, beta=1.0, alpha=-2.0)
        # Force the point itself in front of any tie (duplicates included).
        local = torch.arange(rows, device=device)
        out[local, local + start] = float("-inf")
        vals, nbrs = out.topk(k, dim=1, largest=False, sorted=True)
        dist[start:stop] = vals + sq_norms[start:stop, None]
        idx[start:stop] = nbrs
    dist[:, 0] = 0.0
    dist[:, 1:].clamp_(min=0.0)
    return dist, idx


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
