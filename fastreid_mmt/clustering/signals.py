"""Signals of a run's progress that need no target labels: pure functions of pseudo labels
and features, logged per epoch by ``MMTHook`` (``metrics.json``, TensorBoard).

A user adapting to their own unlabelled cameras has no target mAP; these are what they can
watch instead (``BENCHMARKS.md`` measures how well each follows the true mAP).
"""

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from .knn import knn

# Quantiles of the cluster sizes.
SIZE_QUANTILES = (0.1, 0.5, 0.9)
# Prefix of every per-epoch scalar MMTHook logs (``metrics.json``, TensorBoard).
SCALAR_PREFIX = "mmt/"
# Names of the label-free signals, as MMTHook logs them (after SCALAR_PREFIX).
NUM_CLUSTERS, OUTLIER_SHARE = "num_clusters", "outlier_share"
SIZE_SIGNALS = tuple(f"cluster_size_p{int(q * 100)}" for q in SIZE_QUANTILES)
CLUSTER_SIGNALS = (NUM_CLUSTERS, OUTLIER_SHARE) + SIZE_SIGNALS
LABEL_AGREEMENT = "label_nmi_previous"
MEAN_NET_AGREEMENT = "mean_net_nn_agreement"
LABEL_FREE_SIGNALS = (LABEL_AGREEMENT, MEAN_NET_AGREEMENT) + CLUSTER_SIGNALS
# Diagnostics against the target's true ids (only where the target has them).
TRUE_ID_SIGNALS = ("nmi", "ari")


def singletons(labels):
    """``labels`` with every outlier (-1) given a cluster of its own, so agreement measures do
    not treat all outliers as one large cluster.

    Args:
        labels (np.ndarray): ``[N]`` int pseudo labels, -1 for outliers.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    outliers = labels < 0
    labels[outliers] = labels.max(initial=-1) + 1 + np.arange(int(outliers.sum()))
    return labels


def label_agreement(previous, current):
    """NMI of two epochs' pseudo labels of the same images (1: the same partition), outliers
    as singletons.

    Args:
        previous (np.ndarray), current (np.ndarray): ``[N]`` pseudo labels.
    """
    previous, current = np.asarray(previous), np.asarray(current)
    if previous.shape != current.shape:
        raise ValueError(f"pseudo labels of {previous.shape[0]} and {current.shape[0]} images cannot be compared")
    return float(normalized_mutual_info_score(singletons(previous), singletons(current)))


def nearest_neighbour_agreement(features1, features2, block_size=1024):
    """Share of images whose nearest other image is the same under both feature sets (e.g.
    the two mean nets): 1 when the networks agree on every image's closest match.

    Args:
        features1 (Tensor), features2 (Tensor): ``[N, C]`` features of the same N >= 2 images.
        block_size (int): rows per distance tile of the blocked search (never ``N x N``).
    """
    if features1.shape[0] != features2.shape[0] or features1.shape[0] < 2:
        raise ValueError(f"need the same N >= 2 images in both feature sets, got {features1.shape[0]} and "
                         f"{features2.shape[0]}")
    nearest = [knn(f, 2, block_size)[1][:, 1] for f in (features1, features2)]
    return float((nearest[0] == nearest[1]).float().mean())


def cluster_statistics(labels):
    """Cluster count, outlier share and cluster-size quantiles of one clustering.

    Args:
        labels (np.ndarray): ``[N]`` pseudo labels, -1 for outliers.

    Returns:
        dict[str, float]: ``num_clusters``, ``outlier_share``, ``cluster_size_p10`` / ``p50`` /
        ``p90``.
    """
    labels = np.asarray(labels)
    sizes = np.bincount(labels[labels >= 0])
    sizes = sizes[sizes > 0]
    quantiles = [float(np.quantile(sizes, q)) if len(sizes) else 0.0 for q in SIZE_QUANTILES]
    return dict(zip(CLUSTER_SIGNALS, [float(len(sizes)), float((labels < 0).mean()), *quantiles]))

