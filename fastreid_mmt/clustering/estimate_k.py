"""The number of clusters estimated from the features, for targets whose number of identities
is unknown: k-means over a geometric grid of K, each scored by the silhouette (cosine
distance) of a seeded sample of anchor images measured against all images; the scores are
smoothed over neighbouring K and the smallest K within ``tolerance`` of the best is kept (of
near-equal partitions, the coarser one).

Measured on synthetic targets of 30 to 1,000 identities and 2 to 40 images each (BENCHMARKS.md
"Unknown number of identities"), the pick lies at 0.9-2 times the true number of identities,
where k-means' agreement with the true ids (ARI) is near its best; the K a radius-based DBSCAN
finds falls far below the truth.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_features
from .kmeans import kmeans

__all__ = ["cluster_structure", "estimate_num_clusters", "silhouette", "smooth_over_neighbours"]


def silhouette(features, labels, anchors=None):
    """Mean silhouette of ``labels`` under the cosine distance (points alone in their cluster
    score 0, as in scikit-learn), over all points or over the ``anchors`` only.

    An anchor's distances to its own and to the nearest other cluster are averaged over every
    point, not over the other anchors: a sample of anchors then estimates the full score without
    bias. (Sampling the points themselves, as scikit-learn's ``sample_size`` does, cuts small
    clusters down to singletons that score 0, and so prefers coarse partitions on targets of few
    images per identity.)

    Args:
        features (Tensor): ``[N, D]``, L2-normalised rows.
        labels (Tensor): ``[N]`` int64 cluster of each point.
        anchors (Tensor or None): ``[S]`` indices of the points scored; None scores all.

    Returns:
        float
    """
    _, labels = torch.unique(labels, return_inverse=True)
    num = int(labels.max()) + 1
    anchors = torch.arange(len(labels), device=labels.device) if anchors is None else anchors
    dist = (1.0 - features[anchors] @ features.t()).clamp_(min=0.0)  # [S, N]
    return _silhouette_from_distances(dist, labels, anchors, num)


def _silhouette_from_distances(dist, labels, anchors, num):
    """Mean silhouette of the anchors from their ``[S, N]`` distances to every point."""
    sums = torch.zeros(dist.shape[0], num, dtype=dist.dtype, device=dist.device).index_add_(1, labels, dist)
    counts = torch.bincount(labels, minlength=num).to(dist.dtype)
    own_label = labels[anchors]
    own = counts[own_label]
    a = sums.gather(1, own_label[:, None]).squeeze(1) / (own - 1).clamp(min=1)
    mean_to = sums / counts.clamp(min=1)
    mean_to.scatter_(1, own_label[:, None], float("inf"))
    b = mean_to.min(dim=1).values
    score = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
    score[own <= 1] = 0.0
    return float(score.mean())


def candidate_counts(num, sizes, steps, min_clusters=2):
    """The K tried: ``steps`` values spaced geometrically from ``num / sizes[1]`` to
    ``num / sizes[0]`` (mean images per cluster from ``sizes[1]`` down to ``sizes[0]``), none
    below ``min_clusters``."""
    low, high = max(min_clusters, num / sizes[1]), max(min_clusters, num / sizes[0])
    return sorted({min(num, int(round(k))) for k in np.geomspace(low, high, steps)})


def estimate_num_clusters(features, sizes=(2, 60), steps=16, sample=3000, tolerance=0.95, seed=0,
                          num_iters=50, backend="auto", min_clusters=2):
    """K for k-means when the number of identities is unknown.

    Args:
        features (Tensor): ``[N, D]`` clustering features (as k-means gets them), CPU or CUDA.
        sizes (Sequence[float]): smallest and largest mean images per cluster considered.
        steps (int): K values tried.
        sample (int): images the silhouette scores (seeded anchors, each against all N images;
            all when N is smaller). Memory: ``sample x N`` floats.
        tolerance (float): keep the smallest K whose smoothed score (averaged with its grid
            neighbours) reaches ``tolerance`` x the best smoothed score.
        seed (int): seed of the k-means runs and of the sample.
        num_iters, backend: as :func:`kmeans`.
        min_clusters (int): smallest K considered (e.g. the pseudo-ids one training batch samples).

    Returns:
        tuple: the chosen K and ``{K: silhouette}`` of every K tried (before smoothing).
    """
    num = check_features(features)
    if not 1 <= sizes[0] < sizes[1]:
        raise ValueError(f"sizes must satisfy 1 <= smallest < largest mean cluster size, got {tuple(sizes)}")
    if not 0 < tolerance <= 1:
        raise ValueError(f"tolerance must satisfy 0 < tolerance <= 1, got {tolerance}")
    if num < max(4, min_clusters):
        raise ValueError(f"estimating the number of clusters needs at least {max(4, min_clusters)} images, "
                         f"got {num}")
    generator = torch.Generator().manual_seed(int(seed))
    anchors = torch.randperm(num, generator=generator)[:sample].to(features.device)
    normed = F.normalize(features.float(), dim=1)
    dist = (1.0 - normed[anchors] @ normed.t()).clamp_(min=0.0)  # [S, N], shared by every K
    scores = {}
    for k in candidate_counts(num, sizes, steps, min_clusters):
        labels, _ = kmeans(features, k, seed=seed, num_iters=num_iters, backend=backend)
        _, labels = torch.unique(labels.to(features.device), return_inverse=True)
        scores[k] = _silhouette_from_distances(dist, labels, anchors, int(labels.max()) + 1)
    return smallest_near_best(list(scores), smooth_over_neighbours(list(scores.values())), tolerance), scores


def smallest_near_best(counts, smoothed, tolerance):
    """The smallest of ``counts`` whose ``smoothed`` score reaches ``tolerance`` x the best one;
    for a negative best (no K clusters the features), within ``1 - tolerance`` of its size below it."""
    best = max(smoothed)
    threshold = best - (1.0 - tolerance) * abs(best)
    return min(k for k, score in zip(counts, smoothed) if score >= threshold)


def smooth_over_neighbours(values):
    """Each value averaged with its two neighbours on the grid (the ends repeated): one k-means
    run per K makes the silhouette jitter by about 0.01-0.03 from K to K, enough to move the
    pick between distant modes."""
    padded = [values[0], *values, values[-1]]
    return [sum(padded[i:i + 3]) / 3 for i in range(len(values))]


def cluster_structure(scores):
    """How clearly the features form clusters at any K: the best smoothed silhouette of the grid.

    Args:
        scores (dict): ``{K: silhouette}`` as :func:`estimate_num_clusters` returns it.

    Returns:
        float: in ``[-1, 1]``; near 0 when no K separates the images much better than chance.
    """
    return max(smooth_over_neighbours(list(scores.values())))
