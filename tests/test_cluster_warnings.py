"""Clusterings that training cannot learn much from: the messages name the key in effect."""

import numpy as np
import pytest
import torch

from fastreid_mmt.clustering.pseudo_labels import (PseudoLabels, compute_pseudo_labels, coverage_warnings,
                                                   radius_advice)
from fastreid_mmt_lab.synthetic.features import clustered_features

from .conftest import small_mmt_cfg


def _cluster_cfg(**keys):
    cfg = small_mmt_cfg(**{f"MMT__CLUSTER__{k}": v for k, v in keys.items()})
    return cfg.MMT.CLUSTER


def _result(labels):
    labels = np.asarray(labels)
    return PseudoLabels(labels, torch.zeros(int(labels.max()) + 1, 4))


@pytest.mark.parametrize("rho, min_samples", [(1e-4, 4), (1.6e-3, 12)])
def test_a_tiny_folder_with_the_automatic_radius_names_eps_rho(rho, min_samples):
    # 24 images: the automatic radius (the mean of a fraction of all pairs) is empty, or too
    # small for any core point; either way the message names the key in effect.
    features = clustered_features(24, 16, num_ids=6)[0]
    cfg = _cluster_cfg(METHOD="dbscan", EPS=0.0, EPS_RHO=rho, MIN_SAMPLES=min_samples)
    with pytest.raises(ValueError, match=rf"raise MMT\.CLUSTER\.EPS_RHO \(now {rho}"):
        compute_pseudo_labels(features, cfg, seed=0)


def test_advice_names_the_fixed_radius_when_one_is_set():
    assert "raise MMT.CLUSTER.EPS (now 0.3)" in radius_advice(_cluster_cfg(METHOD="dbscan", EPS=0.3))
    assert "EPS_RHO" not in radius_advice(_cluster_cfg(METHOD="dbscan", EPS=0.3))
    assert "EPS_RHO" in radius_advice(_cluster_cfg(METHOD="dbscan", EPS=0.0))


def test_warnings_for_most_images_left_out_and_too_few_clusters():
    cfg = _cluster_cfg(METHOD="dbscan", EPS=0.0)
    healthy = _result([0, 0, 1, 1, 2, 2, 3, -1])
    assert coverage_warnings(healthy, cfg, ids_per_batch=4) == []
    mostly_out = _result([0, 0, 1, 1, -1, -1, -1, -1, -1, -1])
    messages = coverage_warnings(mostly_out, cfg, ids_per_batch=2)
    assert len(messages) == 1 and "left 60% of the 10 target images out" in messages[0]
    assert "EPS_RHO" in messages[0]
    few = coverage_warnings(healthy, _cluster_cfg(METHOD="kmeans"), ids_per_batch=8)
    assert len(few) == 1 and "4 clusters, fewer than the 8 pseudo-ids" in few[0]
    assert "MMT.CLUSTER.NUM_CLUSTERS" in few[0]


def test_warnings_under_the_structure_switch_name_the_key_that_chose_dbscan():
    cfg = _cluster_cfg(METHOD="kmeans", NUM_CLUSTERS=0, AUTO_K_MIN_SILHOUETTE=0.17)
    labels = np.asarray([0, 0, 1, 1, -1, -1, -1, -1, -1, -1])
    switched = PseudoLabels(labels, torch.zeros(2, 4), eps=0.2, estimated_k=3, structure=0.12)
    messages = coverage_warnings(switched, cfg, ids_per_batch=4)
    assert len(messages) == 2 and all("EPS_RHO" in message for message in messages)
    assert all("structure 0.120 is below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.17; 0 clusters with k-means and "
               "the estimated K = 3 instead" in message for message in messages)
