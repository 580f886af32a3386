"""Estimating the number of clusters when the number of identities is unknown."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import silhouette_score

from fastreid_mmt.clustering.estimate_k import (candidate_counts, cluster_structure, estimate_num_clusters,
                                                silhouette, smallest_near_best, smooth_over_neighbours)
from fastreid_mmt.clustering.pseudo_labels import PseudoLabels, compute_pseudo_labels
from fastreid_mmt.engine.hooks import MMTHook

from .conftest import small_mmt_cfg

# The structure that separated the targets where k-means fell behind the DBSCAN rule (BENCHMARKS.md
# "Unknown number of identities"): configs/MMT/folder.yml's MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE.
MEASURED_THRESHOLD = 0.17


def _blobs(num_ids, per_id, dim=32, spread=0.15, seed=0):
    """Well separated identities: unit centres plus small noise, L2-normalised."""
    gen = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(num_ids, dim, generator=gen), dim=1)
    points = centres.repeat_interleave(per_id, 0) + spread * torch.randn(num_ids * per_id, dim, generator=gen)
    return F.normalize(points, dim=1), torch.arange(num_ids).repeat_interleave(per_id)


def test_silhouette_equals_scikit_learns_with_a_singleton_cluster():
    x, y = _blobs(12, 5, spread=0.6)
    y = y.clone()
    y[0] = 99  # a cluster of one scores 0
    assert silhouette(x, y) == pytest.approx(silhouette_score(x.numpy(), y.numpy(), metric="cosine"), abs=1e-5)


def test_sampled_anchors_estimate_the_full_silhouette_on_small_clusters():
    # 4 images per identity: sampling the points (scikit-learn's sample_size) cuts clusters down
    # to singletons scoring 0; anchors measured against every point keep the full score.
    x, y = _blobs(300, 4, spread=0.1)
    full = silhouette(x, y)
    anchors = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:400]
    assert silhouette(x, y, anchors) == pytest.approx(full, abs=0.03)
    sampled_points = silhouette_score(x.numpy(), y.numpy(), metric="cosine", sample_size=400, random_state=0)
    assert sampled_points < full - 0.1


def test_the_smallest_k_near_the_best_score_is_picked_whatever_its_sign():
    assert smallest_near_best([10, 20, 40], [0.40, 0.50, 0.52], tolerance=0.95) == 20
    # no K clusters the features (every silhouette negative): the best itself is always near enough
    assert smallest_near_best([10, 20, 40], [-0.30, -0.104, -0.10], tolerance=0.95) == 20
    assert smallest_near_best([10, 20, 40], [-0.30, -0.106, -0.10], tolerance=0.95) == 40


def test_smoothing_averages_each_score_with_its_grid_neighbours():
    assert smooth_over_neighbours([3.0, 0.0, 3.0, 6.0]) == pytest.approx([2.0, 2.0, 3.0, 5.0])


@pytest.mark.parametrize("num_ids, per_id", [(20, 4), (40, 10), (8, 40), (300, 4)])
def test_well_separated_identities_give_their_number(num_ids, per_id):
    x, _ = _blobs(num_ids, per_id)
    k, scores = estimate_num_clusters(x, steps=24, seed=1)
    assert k in scores and abs(k - num_ids) <= 0.2 * num_ids, (k, scores)


def test_the_grid_spans_the_mean_cluster_sizes_asked():
    ks = candidate_counts(1200, sizes=(2, 60), steps=16)
    assert ks[0] == 20 and ks[-1] == 600 and len(ks) == 16
    assert candidate_counts(10, sizes=(2, 60), steps=16) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="sizes"):
        estimate_num_clusters(torch.randn(20, 4), sizes=(5, 3))
    with pytest.raises(ValueError, match="at least 4 images"):
        estimate_num_clusters(torch.randn(3, 4))


def test_num_clusters_zero_estimates_k_in_the_pseudo_labels():
    x, _ = _blobs(15, 6)
    cfg = small_mmt_cfg(MMT__CLUSTER__METHOD="kmeans", MMT__CLUSTER__NUM_CLUSTERS=0).MMT.CLUSTER
    result = compute_pseudo_labels(x, cfg, seed=0)
    assert result.num_clusters == len(np.unique(result.labels)) and abs(result.num_clusters - 15) <= 3
    assert (result.labels >= 0).all()  # k-means labels every image


def test_the_measured_structure_threshold_separates_identities_from_noise():
    threshold = MEASURED_THRESHOLD
    for x in (_blobs(100, 4)[0], _blobs(15, 6)[0]):
        assert cluster_structure(estimate_num_clusters(x, seed=1)[1]) > threshold
    noise = F.normalize(torch.randn(400, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    for x in (_blobs(50, 8, spread=1.0)[0], noise):
        assert cluster_structure(estimate_num_clusters(x, seed=1)[1]) < threshold


def test_too_little_structure_clusters_with_the_dbscan_rule_for_the_run():
    x, _ = _blobs(50, 8)
    auto = dict(MMT__CLUSTER__METHOD="kmeans", MMT__CLUSTER__NUM_CLUSTERS=0)
    kmeans_cfg = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=0.0).MMT.CLUSTER
    first = compute_pseudo_labels(x, kmeans_cfg, seed=0)
    assert first.eps is None and first.num_outliers == 0 and first.structure > MEASURED_THRESHOLD
    fall_back_cfg = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=0.99).MMT.CLUSTER
    result = compute_pseudo_labels(x, fall_back_cfg, seed=0)
    assert result.eps is not None and result.num_outliers > 0  # the DBSCAN rule: radius, outliers
    assert result.note is None and first.note is None
    assert (result.estimated_k, result.structure) == (first.estimated_k, pytest.approx(first.structure))
    # Later epochs repeat the first one's choice (a radius: the DBSCAN rule), without estimating again.
    measured_cfg = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=MEASURED_THRESHOLD).MMT.CLUSTER
    later = compute_pseudo_labels(x, measured_cfg, seed=1, eps=result.eps, estimated_k=result.estimated_k,
                                  structure=0.05)
    assert later.eps == result.eps and later.estimated_k == result.estimated_k
    # A run whose first clustering kept k-means (no radius) keeps it, whatever the threshold.
    older = compute_pseudo_labels(x, fall_back_cfg, seed=1, estimated_k=result.estimated_k)
    assert older.eps is None and older.num_clusters == result.estimated_k
    # Off by default: k-means whatever the structure.
    default = compute_pseudo_labels(x, small_mmt_cfg(**auto).MMT.CLUSTER, seed=1, estimated_k=result.estimated_k,
                                    structure=0.05)
    assert default.eps is None and default.num_clusters == result.estimated_k


def test_a_dbscan_rule_that_cannot_fill_a_batch_leaves_kmeans_clustering_and_says_why():
    auto = dict(MMT__CLUSTER__METHOD="kmeans", MMT__CLUSTER__NUM_CLUSTERS=0)
    # Too few clusters for a batch of 60 pseudo-ids (one per identity here, at most): k-means.
    x, _ = _blobs(50, 8)
    always = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=0.99).MMT.CLUSTER
    few = compute_pseudo_labels(x, always, seed=0, min_clusters=60)
    assert few.eps is None and few.num_outliers == 0 and few.num_clusters == few.estimated_k >= 60
    assert "below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.99, but the DBSCAN rule found" in few.note
    assert "fewer than the 60 pseudo-ids a batch samples" in few.note
    # No cluster at all (noise): k-means too, and the note gives DBSCAN's reason.
    noise = F.normalize(torch.randn(100, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    cfg = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=MEASURED_THRESHOLD).MMT.CLUSTER
    first = compute_pseudo_labels(noise, cfg, seed=0)
    assert first.eps is None and first.num_outliers == 0 and first.structure < MEASURED_THRESHOLD
    assert "below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.17, but the DBSCAN rule failed" in first.note
    assert "marked all 100" in first.note
    # A DBSCAN key that cannot work is an error, not a reason to keep k-means.
    wrong = small_mmt_cfg(**auto, MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=MEASURED_THRESHOLD, MMT__CLUSTER__EPS=0.95,
                          MMT__CLUSTER__JACCARD_CUTOFF=0.9).MMT.CLUSTER
    with pytest.raises(ValueError, match=r"MMT.CLUSTER.EPS = 0.95 must be below MMT.CLUSTER.JACCARD_CUTOFF"):
        compute_pseudo_labels(noise, wrong, seed=0)
    # A run that kept the DBSCAN rule and later finds no cluster stops, naming the key.
    with pytest.raises(ValueError, match=r"marked all 100 .* below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.17: 0 keeps "
                                         r"k-means with the estimated K"):
        compute_pseudo_labels(noise, cfg, seed=1, eps=1e-4, estimated_k=first.estimated_k, structure=first.structure)


def test_the_hook_says_once_which_clustering_the_estimate_leads_to(caplog):
    hook = MMTHook.__new__(MMTHook)  # log_estimate reads the config only
    hook.cfg = small_mmt_cfg(MMT__CLUSTER__METHOD="kmeans", MMT__CLUSTER__NUM_CLUSTERS=0,
                             MMT__CLUSTER__AUTO_K_MIN_SILHOUETTE=MEASURED_THRESHOLD)
    labels, centroids = np.zeros(4, dtype=np.int64), torch.zeros(1, 2)
    estimated = "MMT: K = 40 estimated from the features (MMT.CLUSTER.NUM_CLUSTERS 0)"
    with caplog.at_level("INFO", logger="fastreid_mmt.engine.hooks"):
        hook.log_estimate(PseudoLabels(labels, centroids, None, 40, 0.25))
        hook.log_estimate(PseudoLabels(labels, centroids, 0.3, 40, 0.12))
        hook.log_estimate(PseudoLabels(labels, centroids, None, 40, 0.12, note="the DBSCAN rule found 2 clusters"))
    kept, switched, declined = caplog.records
    assert kept.levelname == "INFO" and kept.getMessage() == (
        f"{estimated}, kept for the rest of the run (cluster structure: best silhouette 0.250)")
    assert switched.levelname == "WARNING" and switched.getMessage().startswith(
        f"{estimated}, but the features' cluster structure 0.120 is below MMT.CLUSTER.AUTO_K_MIN_SILHOUETTE = 0.17: "
        "k-means would put every image in a cluster, so the DBSCAN rule")
    assert declined.levelname == "WARNING" and declined.getMessage() == (
        f"{estimated}, k-means with it for the rest of the run: the DBSCAN rule found 2 clusters")
