"""Label-free signals: agreement of successive pseudo labels and of the two mean nets."""

import numpy as np
import pytest
import torch

from fastreid_mmt.clustering.signals import (cluster_statistics, label_agreement, nearest_neighbour_agreement,
                                             singletons)


def test_outliers_become_singletons():
    assert singletons(np.array([0, -1, 1, -1])).tolist() == [0, 2, 1, 3]


def test_label_agreement():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert label_agreement(labels, np.array([5, 5, 3, 3, 4, 4])) == pytest.approx(1.0)  # renamed clusters
    assert label_agreement(labels, np.array([0, 1, 0, 1, 0, 1])) < 0.1
    # all outliers are not one shared cluster: two all-outlier epochs still count as agreeing
    assert label_agreement(np.full(6, -1), np.full(6, -1)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="6 and 5 images"):
        label_agreement(labels, labels[:5])


def test_nearest_neighbour_agreement():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(200, 16, generator=gen)
    assert nearest_neighbour_agreement(feats, feats * 3) == 1.0  # same neighbours at any scale
    other = torch.randn(200, 16, generator=gen)
    assert nearest_neighbour_agreement(feats, other) < 0.1
    noisy = feats + 0.05 * torch.randn(200, 16, generator=gen)
    assert 0.5 < nearest_neighbour_agreement(feats, noisy, block_size=7) < 1.0
    with pytest.raises(ValueError, match="N >= 2"):
        nearest_neighbour_agreement(feats[:1], feats[:1])


def test_cluster_statistics():
    stats = cluster_statistics(np.array([0, 0, 0, 1, 1, 3, -1, -1]))
    assert stats["num_clusters"] == 3 and stats["outlier_share"] == 0.25
    assert stats["cluster_size_p50"] == 2.0
