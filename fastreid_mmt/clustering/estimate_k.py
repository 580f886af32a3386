"""The number of clusters estimated from the features, for targets whose number of identities
is unknown: k-means over a geometric grid of K, scored by the silhouette (cosine distance) on a
seeded sample of the images; the smallest K whose score comes within ``tolerance`` of the best
is kept (of near-equal partitions, the coarser one).

Measured on synthetic targets (BENCHMARKS.md "Unknown number of identities"), the silhouette's
best K lies at 1-2.5 times the true number of identities, where k-means' agreement with the
true ids (ARI) is near its best; the K a radius-based DBSCAN finds falls far below the truth.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_features
from .kmeans import kmeans

__all__ = ["estimate_num_clusters", "silhouette"]


def silhouette(features, labels):
    """Mean silhouette of ``labels`` under the cosine distance (points alone in their cluster
    score 0, as in scikit-learn).

    Args:
        features (Tensor): ``[S, D]``, L2-normalised rows.
        labels (Tensor): ``[S]`` int64 in ``0..K-1``.

    Returns:
        float
    """
    _, labels = torch.unique(labels, return_inverse=True)
    num = int(labels.max()) + 1
    dist = (1.0 - features @ features.t()).clamp_(min=0.0)
    onehot = F.one_hot(labels, num).to(dist.dtype)
    sums = dist @ onehot  # [S, K]: summed distance from each point to each cluster
    counts = onehot.sum(0)
    own = counts[labels]
    a = sums.gather(1, labels[:, None]).squeeze(1) / (own - 1).clamp(min=1)
    mean_to = sums / counts.clamp(min=1)
    mean_to.scatter_(1, labels[:, None], float("inf"))
    b = mean_to.min(dim=1).values
    score = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
    score[own <= 1] = 0.0
    return float(score.mean())


def candidate_counts(num, sizes, steps):
    """The K tried: ``steps`` values spaced geometrically from ``num / sizes[1]`` to
    ``num / sizes[0]`` (mean images per cluster from ``sizes[1]`` down to ``sizes[0]``)."""
    low, high = max(2, num / sizes[1]), max(2, num / sizes[0])
    return sorted({min(num, int(round(k))) for k in np.geomspace(low, high, steps)})


def estimate_num_clusters(features, sizes=(2, 60), steps=16, sample=3000, tolerance=0.95, seed=0,
                          num_iters=50, backend="auto"):
    """K for k-means when the number of identities is unknown.

    Args:
        features (Tensor): ``[N, D]`` clustering features (as k-means gets them), CPU or CUDA.
        sizes (Sequence[float]): smallest and largest mean images per cluster considered.
        steps (int): K values tried.
        sample (int): images the silhouette is computed on (seeded; all when N is smaller).
        tolerance (float): keep the smallest K scoring at least ``tolerance`` x the best.
        seed (int): seed of the k-means runs and of the sample.
        num_iters, backend: as :func:`kmeans`.

    Returns:
        tuple: the chosen K and ``{K: silhouette}`` of every K tried.
    """
    num = check_features(features)
    if not 1 <= sizes[0] < sizes[1]:
        raise ValueError(f"sizes must satisfy 1 <= smallest < largest mean cluster size, got {tuple(sizes)}")
    if not 0 < tolerance <= 1:
        raise ValueError(f"tolerance must satisfy 0 < tolerance <= 1, got {tolerance}")
    if num < 4:
        raise ValueError(f"estimating the number of clusters needs at least 4 images, got {num}")
    generator = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(num, generator=generator)[:sample].to(features.device)
    normed = F.normalize(features.float(), dim=1)[pick]
    scores = {}
    for k in candidate_counts(num, sizes, steps):
        labels, _ = kmeans(features, k, seed=seed, num_iters=num_iters, backend=backend)
        scores[k] = silhouette(normed, labels.to(features.device)[pick])
    best = max(scores.values())
    chosen = min(k for k, score in scores.items() if score >= tolerance * best)
    return chosen, scores
