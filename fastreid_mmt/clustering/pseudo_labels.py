"""From features to pseudo labels and centroids with the configured method."""

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from .dbscan import auto_eps, dbscan, eps_rule_pairs
from .estimate_k import cluster_structure, estimate_num_clusters
from .jaccard import jaccard_distance
from .kmeans import kmeans

# "ground_truth" is a diagnostic upper bound, not a clustering: the labels are given.
METHODS = ("kmeans", "dbscan", "ground_truth")
# A clustering that leaves more than this share of the images out is warned about.
MOST_LEFT_OUT = 0.5


@dataclass
class PseudoLabels:
    """Result of one clustering.

    Attributes:
        labels (np.ndarray): ``[N]`` int64 pseudo label per image, -1 for outliers.
        centroids (Tensor): ``[K, C]`` mean feature of each cluster (not normalised).
        eps (float or None): the DBSCAN radius used.
        estimated_k (int or None): the K estimated when ``NUM_CLUSTERS`` is 0.
        structure (float or None): with the estimate, the features' cluster structure
            (:func:`.estimate_k.cluster_structure`); below ``AUTO_K_MIN_SILHOUETTE`` the labels
            come from the DBSCAN rule instead of k-means, if it fills a batch.
        note (str or None): why the DBSCAN rule was not kept despite too little structure (the
            first clustering of a run only; k-means with the estimated K clusters instead).
    """

    labels: np.ndarray
    centroids: torch.Tensor
    eps: float = None
    estimated_k: int = None
    structure: float = None
    note: str = None

    @property
    def num_clusters(self):
        return int(self.centroids.shape[0])

    @property
    def num_outliers(self):
        return int((self.labels < 0).sum())


def cluster_centroids(features, labels):
    """Mean feature per label. ``features`` ``[N, C]``, ``labels`` ``[N]`` in ``[-1, K)``
    -> ``[K, C]`` (outliers ignored)."""
    labels_t = torch.as_tensor(labels, device=features.device)
    keep = labels_t >= 0
    num = int(labels_t.max().item()) + 1 if bool(keep.any()) else 0
    sums = torch.zeros(num, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels_t[keep], features[keep])
    counts = torch.bincount(labels_t[keep], minlength=num).clamp(min=1).unsqueeze(1)
    return sums / counts.to(features.dtype)


def relabel_consecutive(labels):
    """Map the non-negative labels onto ``0..K-1`` (sorted order); -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full_like(labels, -1)
    keep = labels >= 0
    _, out[keep] = np.unique(labels[keep], return_inverse=True)
    return out


def _jaccard(features, cfg_cluster, cutoff, keep_smallest=0):
    return jaccard_distance(features, k1=cfg_cluster.K1, k2=cfg_cluster.K2, variant=cfg_cluster.JACCARD,
                            cutoff=cutoff, keep_smallest=keep_smallest)


def _dbscan_pseudo_labels(features, cfg_cluster, eps, cutoff):
    """DBSCAN pseudo labels on the Jaccard distance kept below ``cutoff`` (the checked
    ``MMT.CLUSTER.JACCARD_CUTOFF``, :func:`_check_dbscan_keys`).

    MMT's DBSCAN script re-normalises the averaged feature (F.normalize) before the Jaccard
    distance and averages that normalised feature into the cluster centres; so does this.
    ``eps`` is the radius of an earlier epoch (None: ``MMT.CLUSTER.EPS``, or the automatic rule
    when it is 0). The rule is exact on the cut matrix (it also keeps the pairs the rule needs
    beyond the cutoff); when the radius is not below the cutoff the distance is recomputed with
    the cutoff just above it, so that DBSCAN sees every pair within the radius.

    Returns:
        PseudoLabels: labels ``[N]`` (``0..K-1``, -1 outliers), centroids and the radius.
    """
    features = F.normalize(features.float(), dim=1)
    n = features.shape[0]
    if eps is None and cfg_cluster.EPS > 0:
        eps = float(cfg_cluster.EPS)
    if eps is None:
        dist = _jaccard(features, cfg_cluster, cutoff, eps_rule_pairs(n, cfg_cluster.EPS_RHO))
        try:
            eps = auto_eps(dist, rho=cfg_cluster.EPS_RHO)
        except ValueError as err:
            raise ValueError(f"the automatic DBSCAN radius of {n} target images failed ({err}): "
                             f"{radius_advice(cfg_cluster)}") from err
    else:
        dist = None
    if eps >= cutoff:
        # Only an automatic radius gets here (a fixed one was refused above).
        warnings.warn(f"the automatic DBSCAN eps {eps:.4f} is not below MMT.CLUSTER.JACCARD_CUTOFF = {cutoff}: "
                      "recomputing the Jaccard distance with the cutoff just above eps (more memory)")
        cutoff = float(np.nextafter(np.float32(eps), np.float32(2.0)))
        dist = None
    if dist is None:
        dist = _jaccard(features, cfg_cluster, cutoff)
    labels = relabel_consecutive(dbscan(dist, eps, min_samples=cfg_cluster.MIN_SAMPLES, absent_value=cutoff))
    if not (labels >= 0).any():
        raise ValueError(f"DBSCAN (eps={eps:.4f}, min_samples={cfg_cluster.MIN_SAMPLES}) marked all {n} target "
                         f"images as outliers: {radius_advice(cfg_cluster)}")
    return PseudoLabels(labels, cluster_centroids(features, labels), eps)


def _check_dbscan_keys(cfg_cluster):
    """Refuse DBSCAN keys that cannot work, whatever the features; returns the Jaccard cutoff."""
    cutoff = float(cfg_cluster.JACCARD_CUTOFF)
    if not 0 < cutoff <= 1:
        raise ValueError(f"MMT.CLUSTER.JACCARD_CUTOFF must satisfy 0 < cutoff <= 1, got {cutoff}")
    if cfg_cluster.EPS >= cutoff:
        raise ValueError(f"MMT.CLUSTER.EPS = {cfg_cluster.EPS} must be below MMT.CLUSTER.JACCARD_CUTOFF = {cutoff}: "
                         "pairs at or above the cutoff are not stored; raise the cutoff or lower EPS")
    return cutoff


def radius_advice(cfg_cluster):
    """What to change when DBSCAN leaves too many images out, naming the key in effect: the
    fixed radius ``MMT.CLUSTER.EPS``, or ``EPS_RHO`` when the radius is automatic (``EPS`` 0)."""
    if cfg_cluster.EPS > 0:
        radius = f"raise MMT.CLUSTER.EPS (now {cfg_cluster.EPS})"
    else:
        radius = (f"raise MMT.CLUSTER.EPS_RHO (now {cfg_cluster.EPS_RHO}; the automatic radius is the mean of "
                  f"that smallest fraction of the pairwise distances, so it shrinks with fewer images) or set a "
                  f"fixed MMT.CLUSTER.EPS")
    return (f"{radius}, or lower MMT.CLUSTER.MIN_SAMPLES (now {cfg_cluster.MIN_SAMPLES}), or cluster with "
            f"k-means (MMT.CLUSTER.METHOD kmeans, MMT.CLUSTER.NUM_CLUSTERS about the number of people)")


def coverage_warnings(result, cfg_cluster, ids_per_batch):
    """Warnings about a clustering that training cannot learn much from.

    Args:
        result (PseudoLabels): the epoch's clustering.
        cfg_cluster (CfgNode): ``cfg.MMT.CLUSTER`` (names the keys to change).
        ids_per_batch (int): pseudo-ids a training batch samples
            (``SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE``).

    Returns:
        list[str]: one message per problem (empty when none): most images left out as outliers
        (they sit the epoch out), or fewer clusters than a batch samples.
    """
    messages = []
    advice = radius_advice(cfg_cluster)
    if result.eps is not None and result.estimated_k is not None:
        advice += (f" (the DBSCAN rule runs because {switch_reason(result.structure, cfg_cluster)}; 0 clusters "
                   f"with k-means and the estimated K = {result.estimated_k} instead)")
    share = result.num_outliers / max(1, len(result.labels))
    if share > MOST_LEFT_OUT:
        messages.append(f"the clustering left {share:.0%} of the {len(result.labels)} target images out as "
                        f"outliers: this epoch trains on the other {1 - share:.0%} only; {advice}")
    if result.num_clusters < ids_per_batch:
        messages.append(f"the clustering found {result.num_clusters} clusters, fewer than the {ids_per_batch} "
                        f"pseudo-ids a batch samples (SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE): "
                        f"{advice if result.eps is not None else 'raise MMT.CLUSTER.NUM_CLUSTERS'}")
    return messages


def switch_reason(structure, cfg_cluster):
    """Why the structure switch chose the DBSCAN rule (names the key), for logs and errors."""
    return (f"the features' cluster structure {structure:.3f} is below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = "
            f"{cfg_cluster.AUTO_K_MIN_SILHOUETTE}")


def compute_pseudo_labels(features, cfg_cluster, seed, eps=None, ground_truth=None, estimated_k=None,
                          structure=None, min_clusters=2):
    """Cluster features into pseudo labels.

    k-means runs on ``features`` as given (MMT's k-means script clusters the average of the two
    mean nets' normalised features without re-normalising it); DBSCAN re-normalises them first,
    as MMT's DBSCAN script does, and its centroids are means of the re-normalised features.

    With ``NUM_CLUSTERS`` 0 the first clustering estimates K and the features' cluster structure;
    when the structure is below ``AUTO_K_MIN_SILHOUETTE`` it tries the DBSCAN rule, and keeps it
    only if it finds at least ``min_clusters`` clusters (else k-means with the estimated K, and
    ``note`` says why). The choice holds for the run: later epochs pass the estimate and, when
    the DBSCAN rule was kept, its radius.

    Args:
        features (Tensor): ``[N, C]`` on CPU or CUDA.
        cfg_cluster (CfgNode): ``cfg.MMT.CLUSTER``.
        seed (int): k-means seed.
        eps (float or None): DBSCAN radius; None computes it with the automatic rule
            (``EPS_RHO``) when ``cfg_cluster.EPS`` is 0. With an earlier estimate of K, a radius
            means the DBSCAN rule was chosen for the run and None means k-means.
        ground_truth (Sequence[int] or None): ``[N]`` true ids; read only by the
            ``ground_truth`` method (the labels are these ids, renumbered).
        estimated_k (int or None): k-means K estimated at an earlier epoch; None estimates it
            (:func:`.estimate_k.estimate_num_clusters`) when ``cfg_cluster.NUM_CLUSTERS`` is 0.
        structure (float or None): the cluster structure measured with that estimate (reported
            back unchanged).
        min_clusters (int): the smallest K an estimate may choose, and the fewest clusters for
            which the DBSCAN rule is kept (the pseudo-ids a batch samples).

    Raises:
        ValueError: unknown method, more clusters than images, no cluster at all, a fixed
            ``EPS`` not below ``JACCARD_CUTOFF``, or the ``ground_truth`` method without ``N``
            true ids.
    """
    method = cfg_cluster.METHOD
    n = features.shape[0]
    if method == "kmeans" and cfg_cluster.NUM_CLUSTERS == 0:
        return _auto_k_labels(features, cfg_cluster, seed, eps, estimated_k, structure, min_clusters)
    if method == "dbscan":
        return _dbscan_pseudo_labels(features, cfg_cluster, eps, _check_dbscan_keys(cfg_cluster))
    if method == "kmeans":
        labels = _kmeans_labels(features, cfg_cluster, cfg_cluster.NUM_CLUSTERS, seed)
    elif method == "ground_truth":
        if ground_truth is None or len(ground_truth) != n:
            raise ValueError(f"MMT.CLUSTER.METHOD ground_truth needs the true id of each of the {n} target "
                             f"training images, got {None if ground_truth is None else len(ground_truth)}")
        labels = relabel_consecutive(ground_truth)
    else:
        raise ValueError(f"MMT.CLUSTER.METHOD must be one of {METHODS}, got {method!r}")
    return PseudoLabels(labels, cluster_centroids(features, labels), eps)


def _kmeans_labels(features, cfg_cluster, k, seed):
    if k > features.shape[0]:
        raise ValueError(f"MMT.CLUSTER.NUM_CLUSTERS = {k} exceeds the {features.shape[0]} target training images")
    labels, _ = kmeans(features, k, seed=seed, num_iters=cfg_cluster.KMEANS_ITERS, backend=cfg_cluster.BACKEND)
    return relabel_consecutive(labels.cpu().numpy())


def _auto_k_labels(features, cfg_cluster, seed, eps, estimated_k, structure, min_clusters):
    """``compute_pseudo_labels`` when the number of identities is unknown (``NUM_CLUSTERS`` 0)."""
    threshold = cfg_cluster.AUTO_K_MIN_SILHOUETTE
    first = estimated_k is None
    if first:
        estimated_k, scores = estimate_num_clusters(
            features, sizes=cfg_cluster.AUTO_K_SIZES, steps=cfg_cluster.AUTO_K_STEPS, sample=cfg_cluster.AUTO_K_SAMPLE,
            tolerance=cfg_cluster.AUTO_K_TOLERANCE, seed=seed, num_iters=cfg_cluster.KMEANS_ITERS,
            backend=cfg_cluster.BACKEND, min_clusters=min_clusters)
        structure = cluster_structure(scores)
    try_dbscan = threshold > 0 and structure < threshold if first else eps is not None
    note = None
    if try_dbscan:
        # Too little structure for k-means, which must put every image in some cluster: the
        # DBSCAN rule trains on the images it groups only, if they can fill a batch.
        why = switch_reason(structure, cfg_cluster)
        cutoff = _check_dbscan_keys(cfg_cluster)  # a wrong key is an error, not a reason to keep k-means
        try:
            result = _dbscan_pseudo_labels(features, cfg_cluster, eps, cutoff)
        except ValueError as err:
            if not first:
                raise ValueError(f"{err}; the DBSCAN rule runs because {why}: 0 keeps k-means with the "
                                 f"estimated K ({estimated_k})") from None
            note = f"{why}, but the DBSCAN rule failed ({err})"
        else:
            if not first or result.num_clusters >= min_clusters:
                return replace(result, estimated_k=estimated_k, structure=structure)
            note = (f"{why}, but the DBSCAN rule found {result.num_clusters} clusters, fewer than the "
                    f"{min_clusters} pseudo-ids a batch samples")
    labels = _kmeans_labels(features, cfg_cluster, estimated_k, seed)
    return PseudoLabels(labels, cluster_centroids(features, labels), None, estimated_k, structure, note)
