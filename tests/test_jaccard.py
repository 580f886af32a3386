"""MMT's Jaccard variant against a literal dense re-statement, and the cutoff's guarantees."""

import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from fastreid_mmt.clustering import auto_eps, dbscan, jaccard_distance, knn
from fastreid_mmt.clustering.dbscan import eps_rule_pairs
from fastreid_mmt.clustering.knn import farthest
from fastreid_mmt.clustering.pseudo_labels import compute_pseudo_labels
from fastreid_mmt_lab.synthetic.features import clustered_features, hub_features

from .conftest import small_mmt_cfg
from fastreid_mmt_lab.jaccard_reference import mmt_eps_rule, mmt_jaccard_dense

RHO = 1.6e-3
VALUE_TOL = 1e-5
EPS_TOL = 1e-5
CUTOFF = 0.9  # the config default


def densify(dist, absent=1.0):
    dense = np.full(dist.shape, absent, dtype=np.float32)
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data
    return dense


def cluster_cfg(**overrides):
    """``MMT.CLUSTER`` of the base config, DBSCAN with MMT's Jaccard distance."""
    keys = {"MMT__CLUSTER__METHOD": "dbscan", "MMT__CLUSTER__K1": 20, "MMT__CLUSTER__K2": 6}
    keys.update(overrides)
    return small_mmt_cfg(**keys).MMT.CLUSTER


# Noise 1.6: few pairs of points have identical query-expanded vectors (distance 0 up to
# rounding). For those, float sums give 0 or ~6e-8 depending on the last bits of the weights,
# in the reference as in ours; the eps rule drops exact zeros, so a different number of them
# moves eps (by about 1% at N = 600 for 4 such pairs out of round(rho * count) = 288).
CASES = {"clustered": lambda: clustered_features(600, 64, noise=1.6), "hub": lambda: hub_features(600, 64)}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    feats, _ = CASES[request.param]()
    return feats, mmt_jaccard_dense(feats, k1=20, k2=6)


def test_mmt_variant_matches_literal_reference(case):
    feats, reference = case
    ours = jaccard_distance(feats, k1=20, k2=6, variant="mmt")
    dense = densify(ours)
    assert np.abs(dense - reference).max() <= VALUE_TOL
    upper = np.triu_indices(len(feats), 1)
    # Precondition of an equal eps: as many exact zeros (the rule drops them).
    assert np.count_nonzero(dense[upper] == 0) == np.count_nonzero(reference[upper] == 0)
    eps = mmt_eps_rule(reference, RHO)
    assert abs(auto_eps(ours, rho=RHO) - eps) <= EPS_TOL
    expected = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit(reference).labels_
    assert expected.max() >= 2, "the fixture should give several clusters"
    assert adjusted_rand_score(expected, dbscan(ours, eps, min_samples=4)) >= 0.999


def test_cut_matrix_keeps_eps_and_labels(case):
    feats, reference = case
    eps = mmt_eps_rule(reference, RHO)
    cut = jaccard_distance(feats, variant="mmt", cutoff=CUTOFF, keep_smallest=eps_rule_pairs(len(feats), RHO))
    assert abs(auto_eps(cut, rho=RHO) - eps) <= EPS_TOL
    expected = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit(reference).labels_
    assert adjusted_rand_score(expected, dbscan(cut, eps, min_samples=4, absent_value=CUTOFF)) >= 0.999


@pytest.mark.parametrize("variant", ["mmt", "spcl"])
@pytest.mark.parametrize("cutoff", [0.9, 0.3])
def test_cutoff_guarantee_on_hub_features(variant, cutoff):
    # Cutoff 0.3 is below the radius the rule picks here: the rule needs pairs beyond the
    # cutoff (kept by keep_smallest), and DBSCAN needs a recomputation above the radius.
    raw, _ = hub_features(1500, 64, seed=3)
    feats = torch.nn.functional.normalize(raw, dim=1)  # bit for bit what compute_pseudo_labels uses
    k1 = 20 if variant == "mmt" else 30
    full = jaccard_distance(feats, k1=k1, k2=6, variant=variant)
    pairs = eps_rule_pairs(len(feats), RHO)
    cut = jaccard_distance(feats, k1=k1, k2=6, variant=variant, cutoff=cutoff, keep_smallest=pairs)
    rows = np.repeat(np.arange(cut.shape[0]), np.diff(cut.indptr))
    assert (cut.data[cut.indices > rows] >= cutoff).sum() <= pairs
    assert cut.nnz < full.nnz
    dense_full, dense_cut = densify(full), densify(cut, absent=cutoff)
    below = dense_full < cutoff
    assert np.array_equal(dense_cut[below], dense_full[below])  # every pair below the cutoff, exact
    eps = auto_eps(full, rho=RHO)
    assert auto_eps(cut, rho=RHO) == eps
    cfg = cluster_cfg(MMT__CLUSTER__JACCARD=variant, MMT__CLUSTER__K1=k1, MMT__CLUSTER__JACCARD_CUTOFF=cutoff)
    if eps >= cutoff:
        with pytest.warns(UserWarning, match="JACCARD_CUTOFF"):
            result = compute_pseudo_labels(raw, cfg, seed=0)
    else:
        result = compute_pseudo_labels(raw, cfg, seed=0)
    assert result.eps == eps
    expected = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit(dense_full).labels_
    assert expected.max() >= 1
    assert adjusted_rand_score(expected, result.labels) == 1.0


def test_dbscan_renormalises_the_averaged_feature():
    feats, _ = clustered_features(400, 32, noise=1.6)
    scale = torch.linspace(0.5, 2.0, len(feats)).unsqueeze(1)  # e.g. an average of two unit vectors
    cfg = cluster_cfg()
    plain = compute_pseudo_labels(feats, cfg, seed=0)
    scaled = compute_pseudo_labels(feats * scale, cfg, seed=0)
    np.testing.assert_array_equal(plain.labels, scaled.labels)
    assert abs(plain.eps - scaled.eps) <= 1e-6  # the normalised rows differ in their last bits
    torch.testing.assert_close(plain.centroids, scaled.centroids)  # means of the normalised features


def test_fixed_eps_must_be_below_cutoff():
    feats, _ = clustered_features(200, 16)
    cfg = cluster_cfg(MMT__CLUSTER__EPS=0.95, MMT__CLUSTER__JACCARD_CUTOFF=0.9)
    with pytest.raises(ValueError, match=r"MMT.CLUSTER.EPS = 0.95 must be below MMT.CLUSTER.JACCARD_CUTOFF = 0.9"):
        compute_pseudo_labels(feats, cfg, seed=0)
    with pytest.raises(ValueError, match="JACCARD_CUTOFF must satisfy"):
        compute_pseudo_labels(feats, cluster_cfg(MMT__CLUSTER__JACCARD_CUTOFF=0.0), seed=0)


def test_bad_variant_and_inputs():
    with pytest.raises(ValueError, match=r"MMT.CLUSTER.JACCARD must be one of \('mmt', 'spcl'\), got 'fastreid'"):
        small_mmt_cfg(MMT__CLUSTER__JACCARD="fastreid")
    feats = torch.randn(50, 8)
    with pytest.raises(ValueError, match="L2-normalised rows"):
        jaccard_distance(feats, k1=5, k2=2, variant="mmt")
    with pytest.raises(ValueError, match="variant"):
        jaccard_distance(feats, k1=5, k2=2, variant="fastreid")
    with pytest.raises(ValueError, match="cutoff"):
        jaccard_distance(feats, k1=5, k2=2, variant="spcl", cutoff=1.5)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_knn_returns_farthest(backend):
    feats = torch.randn(301, 16, generator=torch.Generator().manual_seed(0))
    _, _, far = knn(feats, 7, block_size=64, backend=backend, return_farthest=True)
    brute = torch.cdist(feats.double(), feats.double()).pow(2).max(dim=1).values.float()
    torch.testing.assert_close(far, brute, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(farthest(feats, block_size=50), brute, atol=1e-4, rtol=1e-5)
