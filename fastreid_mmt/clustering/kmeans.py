"""K-means pseudo labels, with faiss or in pure torch.

Both backends start from the same k-means++ seeds, drawn on the tensor's
device from a random subsample of ``M`` rows through its ``M x M`` Gram matrix
(so each of the ``K`` sequential draws costs ``O(M)``). Lloyd's iterations then
run in ``faiss.Kmeans`` (on a GPU when faiss sees one) or in torch, with
blocked assignment steps that never build more than ``block_size x K``
distances. Both are deterministic for a given seed. With ``num_redo`` > 1 the
seeding and iterations are restarted and the lowest-inertia result is kept
(scikit-learn's ``n_init``).
"""

import math
from typing import Tuple

import torch

from .checks import check_features, check_range

__all__ = ["kmeans"]

# Values of MMT.CLUSTER.BACKEND.
BACKENDS = ("auto", "faiss", "torch")


def _faiss_module():
    """Returns the faiss module, or None when it cannot be imported."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _assign(
    features: torch.Tensor, sq_norms: torch.Tensor, centroids: torch.Tensor, block_size: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of every row.

    Args:
        features: (N, D) float32.
        sq_norms: (N,) squared norms of ``features``.
        centroids: (K, D) float32.
        block_size: rows per ``(block_size, K)`` distance block.

    Returns:
        labels: (N,) int64 nearest centroid.
        dist: (N,) float32 squared distance to it.
    """
    num = features.shape[0]
    cent_sq = centroids.pow(2).sum(dim=1)
    cent_t = centroids.t().contiguous()
    labels = torch.empty(num, dtype=torch.long, device=features.device)
    dist = torch.empty(num, dtype=features.dtype, device=features.device)
    for start in range(0, num, block_size):
        stop = min(start + block_size, num)
        scores = torch.addmm(cent_sq.unsqueeze(0), features[start:stop], cent_t, beta=1.0, alpha=-2.0)
        best, labels[start:stop] = scores.min(dim=1)
        dist[start:stop] = (best + sq_norms[start:stop]).clamp_(min=0.0)
    return labels, dist


def _kmeans_pp(
    features: torch.Tensor, num_clusters: int, generator: torch.Generator, oversample: int, trials: int
) -> torch.Tensor:
    """Greedy k-means++ seeding on a random subsample of ``oversample * K`` rows.

    Each step draws ``trials`` candidates with probability proportional to the
    squared distance to the nearest chosen seed and keeps the one that lowers
    the potential most (as scikit-learn does).

    Args:
        features: (N, D) float32.
        num_clusters: K.
        generator: CPU generator providing all the randomness.
        oversample: subsample size M as a multiple of K (capped at N).
        trials: candidates per step; ``0`` means ``2 + int(log(K))``.

    Returns:
        (K, D) initial centroids.
    """
    num = features.shape[0]
    device = features.device
    size = min(num, max(num_clusters, oversample * num_clusters))
    if trials < 1:
        trials = 2 + int(math.log(num_clusters))
    subset = torch.randperm(num, generator=generator)[:size].to(device)
    uniforms = torch.rand(num_clusters, trials, generator=generator, dtype=torch.float64).to(device)
    sample = features[subset]  # (M, D)
    sq_dist = sample @ sample.t()  # (M, M) Gram, turned in place into squared distances
    sq = sq_dist.diagonal().clone()
    sq_dist.mul_(-2.0).add_(sq.unsqueeze(0)).add_(sq.unsqueeze(1)).clamp_(min=0.0)
    chosen = torch.empty(num_clusters, dtype=torch.long, device=device)
    chosen[0] = (uniforms[0, 0] * size).long().clamp(max=size - 1)
    best = sq_dist[chosen[0]].double()  # (M,) distance to the nearest seed
    for step in range(1, num_clusters):
        cdf = best.cumsum(dim=0)
        picks = torch.searchsorted(cdf, uniforms[step] * cdf[-1], right=True).clamp_(max=size - 1)
        cand = torch.minimum(best.unsqueeze(0), sq_dist[picks].double())  # (trials, M)
        winner = cand.sum(dim=1).argmin()
        chosen[step] = picks[winner]
        best = cand[winner]
    return sample[chosen].clone()


def _update(features: torch.Tensor, labels: torch.Tensor, dist: torch.Tensor, num_clusters: int):
    """Mean of each cluster; empty clusters move to the worst-fitted rows.

    Args:
        features: (N, D) float32.
        labels: (N,) int64 assignments.
        dist: (N,) squared distance of each row to its centroid.
        num_clusters: K.

    Returns:
        (K, D) new centroids.
    """
    sums = features.new_zeros(num_clusters, features.shape[1])
    if features.is_cuda:  # sort-based, deterministic accumulation
        sums.index_put_((labels,), features, accumulate=True)
    else:
        sums.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=num_clusters)
    centroids = sums / counts.clamp(min=1).unsqueeze(1).to(features.dtype)
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel() > 0:
        far = dist.topk(empty.numel()).indices
        centroids[empty] = features[far]
    return centroids


def _kmeans_torch(features, centroids, num_iters, block_size):
    """Lloyd's algorithm from ``centroids`` (K, D); see :func:`kmeans`. Also returns the
    inertia (sum of squared distances to the assigned centroids)."""
    num_clusters = centroids.shape[0]
    sq_norms = features.pow(2).sum(dim=1)
    labels, dist = _assign(features, sq_norms, centroids, block_size)
    for _ in range(num_iters):
        centroids = _update(features, labels, dist, num_clusters)
        new_labels, dist = _assign(features, sq_norms, centroids, block_size)
        converged = torch.equal(new_labels, labels)
        labels = new_labels
        if converged:
            break
    return labels, centroids, float(dist.double().sum())


def _kmeans_faiss(faiss, features, centroids, seed, num_iters):
    """``faiss.Kmeans`` from ``centroids`` (K, D); see :func:`kmeans`. Also returns the
    inertia."""
    array = features.cpu().contiguous().numpy()
    model = faiss.Kmeans(
        array.shape[1],
        centroids.shape[0],
        niter=num_iters,
        seed=seed,
        gpu=faiss.get_num_gpus() > 0,
        min_points_per_centroid=1,  # silences faiss' "too few points" warning
        verbose=False,
    )
    model.train(array, init_centroids=centroids.cpu().contiguous().numpy())
    dist, assign = model.index.search(array, 1)
    labels = torch.from_numpy(assign[:, 0]).long()
    centroids = torch.from_numpy(model.centroids.copy())
    return labels.to(features.device), centroids.to(features.device), float(dist[:, 0].astype("float64").sum())


@torch.no_grad()
def kmeans(
    features: torch.Tensor,
    num_clusters: int,
    seed: int = 0,
    num_iters: int = 20,
    backend: str = "auto",
    block_size: int = 4096,
    init_oversample: int = 4,
    init_trials: int = 0,
    num_redo: int = 1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """K-means clustering of the rows of ``features``.

    Args:
        features: (N, D) float tensor on CPU or CUDA; used in float32.
        num_clusters: K, ``1 <= K <= N``.
        seed: random seed; equal seeds give equal results.
        num_iters: maximum number of Lloyd iterations.
        backend: ``"faiss"``, ``"torch"`` or ``"auto"``: faiss when it can be
            imported, unless the features are on CUDA and faiss has no GPU.
        block_size: rows per distance block (``"torch"`` backend).
        init_oversample: k-means++ runs on ``M = init_oversample * K``
            random rows (at most N); its ``M x M`` distance matrix takes
            ``4 M^2`` bytes.
        init_trials: greedy k-means++ candidates per seed; ``0`` picks
            ``2 + int(log(K))``.
        num_redo: restarts (each its own k-means++ seeding and Lloyd
            iterations); the one with the lowest inertia is returned
            (scikit-learn's ``n_init``).

    Returns:
        labels: (N,) int64 cluster of each row, on the input's device.
        centroids: (K, D) float32 centroids, on the input's device.

    Raises:
        ValueError: on a non-2-D input, ``num_clusters`` outside ``[1, N]``,
            or bad ``num_iters`` / ``backend`` / ``block_size``.
        ImportError: if ``backend="faiss"`` and faiss cannot be imported.
    """
    num = check_features(features)
    check_range("num_clusters", num_clusters, 1, num)
    if num_iters < 1:
        raise ValueError(f"num_iters must be >= 1, got {num_iters}")
    if block_size < 1 or init_oversample < 1 or num_redo < 1:
        raise ValueError(f"block_size, init_oversample and num_redo must be >= 1, got {block_size}, "
                         f"{init_oversample}, {num_redo}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    features = features.detach().float().contiguous()
    faiss = _faiss_module() if backend != "torch" else None
    if backend == "faiss" and faiss is None:
        raise ImportError("backend='faiss' requested but faiss cannot be imported")
    if backend == "auto" and faiss is not None and features.is_cuda and faiss.get_num_gpus() == 0:
        faiss = None
    generator = torch.Generator().manual_seed(seed)
    best = None
    for redo in range(num_redo):
        centroids = _kmeans_pp(features, num_clusters, generator, init_oversample, init_trials)
        if faiss is not None:
            result = _kmeans_faiss(faiss, features, centroids, seed + redo, num_iters)
        else:
            result = _kmeans_torch(features, centroids, num_iters, block_size)
        if best is None or result[2] < best[2]:
            best = result
    return best[0], best[1]
