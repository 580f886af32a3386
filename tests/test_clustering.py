"""Tests of fastreid_mmt.clustering (``spcl`` Jaccard variant) against fast-reid's dense reference."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from fastreid.utils.compute_dist import compute_jaccard_distance
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from fastreid_mmt.clustering import auto_eps, dbscan, jaccard_distance, kmeans, knn
from fastreid_mmt_lab.synthetic.features import clustered_features

RHO = 1.6e-3  # MMT's default
VALUE_TOL = 1e-4
EPS_TOL = 1e-5


def make_blobs(num, dim, num_centres, noise, seed=0):
    """L2-normalised Gaussian blobs: (num, dim) float32 features and labels."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_centres, dim, generator=gen)
    labels = torch.randint(0, num_centres, (num,), generator=gen)
    feats = centres[labels] + noise * torch.randn(num, dim, generator=gen)
    return torch.nn.functional.normalize(feats, dim=1), labels.numpy()


def make_reid_like(num, dim, seed=0):
    return clustered_features(num, dim, seed=seed)


def densify(dist, absent=1.0):
    """Dense copy of a sparse distance matrix whose absent entries mean ``absent``."""
    dense = np.full(dist.shape, absent, dtype=np.float32)
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data
    return dense


def stored_mask(dist):
    mask = np.zeros(dist.shape, dtype=bool)
    coo = dist.tocoo()
    mask[coo.row, coo.col] = True
    return mask


def reference_eps(dense, rho=RHO):
    """MMT's rule on a dense matrix, as the original code writes it."""
    tri = np.triu(dense, 1)
    tri = np.sort(tri[np.nonzero(tri)], axis=None)
    top = np.round(rho * tri.size).astype(int)
    return float(tri[:top].mean())


@pytest.fixture(scope="module")
def blobs():
    return make_reid_like(800, 128)


@pytest.fixture(scope="module")
def reference(blobs):
    feats, _ = blobs
    return compute_jaccard_distance(feats, k1=30, k2=6, search_option=3)


@pytest.fixture(scope="module", params=["torch", "faiss"])
def ours(request, blobs):
    feats, _ = blobs
    return jaccard_distance(feats, k1=30, k2=6, variant="spcl", knn_backend=request.param)


# ----------------------------------------------------------------- jaccard


def test_jaccard_values_match_reference(ours, reference):
    assert isinstance(ours, sp.csr_matrix)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    mask = stored_mask(ours)
    assert np.all(mask[reference < 1]), "a pair with reference distance < 1 is missing"
    diff = np.abs(densify(ours) - reference)
    assert diff[mask].max() <= VALUE_TOL
    assert diff.max() <= VALUE_TOL  # absent entries are 1 in the reference too


def test_jaccard_is_sparse_and_symmetric(ours):
    num = ours.shape[0]
    assert ours.nnz < 0.2 * num * num
    assert abs(ours - ours.T).max() == 0
    assert np.all(ours.diagonal() <= VALUE_TOL)
    assert ours.has_sorted_indices


def test_dbscan_labels_match_reference(ours, reference):
    # Same radius on both matrices: MMT's (from the reference) and two fixed ones.
    for eps in (reference_eps(reference), 0.3, 0.5):
        labels_ref = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit(reference).labels_
        labels = dbscan(ours, eps, min_samples=4)
        assert labels.dtype == np.int64 and labels.shape == (ours.shape[0],)
        assert labels.max() >= 1, "the fixture should give several clusters"
        assert adjusted_rand_score(labels_ref, labels) >= 0.99


def test_auto_eps_matches_reference_rule(ours, reference):
    # The rule applied to the dense form of our matrix: exact.
    assert abs(auto_eps(ours) - reference_eps(densify(ours))) <= EPS_TOL
    assert abs(auto_eps(ours, rho=0.05) - reference_eps(densify(ours), rho=0.05)) <= EPS_TOL
    # Against fast-reid's matrix the rule is not continuous: it drops exact
    # zeros, and pairs whose query-expanded vectors are equal up to rounding get
    # 0 or ~1e-7 depending on float summation order. Values agree to 1e-6,
    # but which of those pairs count differs, which moves eps slightly.
    assert abs(auto_eps(ours) - reference_eps(reference)) <= 0.05 * reference_eps(reference)


@pytest.mark.parametrize("k1,k2", [(20, 6), (25, 1), (7, 3)])
def test_jaccard_other_parameters(k1, k2):
    # k1 = 25 checks the half size round(12.5) = 12; k2 = 1 skips expansion.
    feats, _ = make_reid_like(300, 64, seed=1)
    reference = compute_jaccard_distance(feats, k1=k1, k2=k2, search_option=3)
    ours = jaccard_distance(feats, k1=k1, k2=k2, variant="spcl")
    assert np.all(stored_mask(ours)[reference < 1])
    assert np.abs(densify(ours) - reference).max() <= VALUE_TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_jaccard_cuda_matches_cpu():
    feats, _ = make_reid_like(600, 64, seed=2)
    cpu = jaccard_distance(feats)
    gpu = jaccard_distance(feats.cuda())
    assert (cpu != gpu).nnz == 0 or abs(cpu - gpu).max() <= VALUE_TOL
    cpu = jaccard_distance(feats, variant="spcl")
    gpu = jaccard_distance(feats.cuda(), variant="spcl")
    assert (cpu != gpu).nnz == 0 or abs(cpu - gpu).max() <= VALUE_TOL


# ------------------------------------------------------------------ dbscan


def test_dbscan_keeps_explicit_zeros_and_self():
    # Four points at distance 0 from each other, stored as explicit zeros.
    rows, cols = np.nonzero(~np.eye(4, dtype=bool))
    dist = sp.csr_matrix((np.zeros(rows.size, np.float32), (rows, cols)), shape=(6, 6))
    assert dist.nnz == 12
    labels = dbscan(dist, eps=0.1, min_samples=4)  # 3 zeros + self = 4
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, -1, -1])
    assert dist.nnz == 12  # input untouched


def test_dbscan_matches_dense_sklearn(ours):
    dense = densify(ours)
    for eps in (0.3, 0.5, 0.7):
        expected = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit(dense).labels_
        np.testing.assert_array_equal(dbscan(ours, eps), expected)


def test_auto_eps_pads_with_absent_pairs_and_skips_zeros():
    dense = np.ones((6, 6), dtype=np.float32)
    np.fill_diagonal(dense, 0)
    dense[0, 1] = dense[1, 0] = 0.0  # explicit zero: excluded from the count
    dense[2, 3] = dense[3, 2] = 0.25
    dense[4, 5] = dense[5, 4] = 0.5
    rows = [0, 1, 2, 3, 4, 5, 0, 1]
    cols = [1, 0, 3, 2, 5, 4, 0, 1]
    data = [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.0, 0.0]
    dist = sp.csr_matrix((np.array(data, np.float32), (rows, cols)), shape=(6, 6))
    for rho in (0.1, 0.2, 0.5, 1.0):
        assert abs(auto_eps(dist, rho=rho) - reference_eps(dense, rho=rho)) <= EPS_TOL


# -------------------------------------------------------------------- knn


@pytest.mark.parametrize("backend", ["torch", "faiss"])
@pytest.mark.parametrize("num,k,block", [(103, 10, 7), (700, 30, 256), (64, 64, 1024)])
def test_knn_matches_brute_force(backend, num, k, block):
    gen = torch.Generator().manual_seed(num)
    feats = torch.randn(num, 16, generator=gen)
    dist, idx = knn(feats, k, block_size=block, backend=backend)
    assert dist.shape == (num, k) and idx.dtype == torch.int64 and dist.dtype == torch.float32
    brute = torch.cdist(feats.double(), feats.double()).pow(2)
    brute.fill_diagonal_(-1.0)
    expected = brute.topk(k, dim=1, largest=False).values.clamp(min=0).float()
    torch.testing.assert_close(dist, expected, atol=1e-4, rtol=1e-5)
    assert torch.equal(idx[:, 0], torch.arange(num))
    claimed = (feats.unsqueeze(1) - feats[idx]).pow(2).sum(dim=2)
    torch.testing.assert_close(dist, claimed, atol=1e-4, rtol=1e-5)
    assert all(len(set(row.tolist())) == k for row in idx)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_knn_puts_self_first_among_duplicates(backend):
    feats = torch.randn(5, 8).repeat(4, 1)  # every point appears four times
    dist, idx = knn(feats, 6, backend=backend)
    assert torch.equal(idx[:, 0], torch.arange(20))
    assert torch.all(dist[:, :4] <= 1e-5)


# ----------------------------------------------------------------- kmeans


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_kmeans_recovers_separated_clusters(backend):
    feats, labels = make_blobs(800, 32, 10, 0.05, seed=3)
    pred, centroids = kmeans(feats, 10, seed=0, backend=backend)
    assert pred.dtype == torch.int64 and pred.shape == (800,)
    assert centroids.shape == (10, 32) and centroids.dtype == torch.float32
    assert normalized_mutual_info_score(labels, pred.numpy()) >= 0.99
    again, centroids_again = kmeans(feats, 10, seed=0, backend=backend)
    assert torch.equal(pred, again) and torch.equal(centroids, centroids_again)


def test_kmeans_backends_agree_on_many_clusters():
    feats, labels = make_blobs(2000, 64, 100, 0.3, seed=4)
    for backend in ("faiss", "torch"):
        pred, _ = kmeans(feats, 100, seed=1, backend=backend)
        assert normalized_mutual_info_score(labels, pred.numpy()) >= 0.95


# ----------------------------------------------------------------- errors


def test_errors_are_informative():
    feats = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"k=11 with N=10"):
        knn(feats, 11)
    with pytest.raises(ValueError, match="2-D"):
        knn(torch.randn(10), 3)
    with pytest.raises(ValueError, match="backend"):
        knn(feats, 3, backend="annoy")
    with pytest.raises(ValueError, match=r"k2=8 with k1=5"):
        jaccard_distance(feats, k1=5, k2=8)
    with pytest.raises(ValueError, match=r"k1=20 with N=10"):
        jaccard_distance(feats)
    square = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="square"):
        dbscan(sp.csr_matrix(np.ones((3, 4), np.float32)), 0.5)
    with pytest.raises(ValueError, match="eps"):
        dbscan(square, 0.0)
    with pytest.raises(ValueError, match="absent_value"):
        dbscan(square, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        dbscan(sp.csr_matrix(-np.eye(3, dtype=np.float32)), 0.5)
    with pytest.raises(ValueError, match="scipy.sparse"):
        dbscan(np.eye(3), 0.5)
    with pytest.raises(ValueError, match="min_samples"):
        dbscan(square, 0.5, min_samples=0)
    with pytest.raises(ValueError, match="rho"):
        auto_eps(square, rho=0.0)
    with pytest.raises(ValueError, match="is 0"):
        auto_eps(square, rho=1e-3)
    with pytest.raises(ValueError, match=r"num_clusters=11 with N=10"):
        kmeans(feats, 11)
    with pytest.raises(ValueError, match=r"num_clusters=0 with N=10"):
        kmeans(feats, 0)
    with pytest.raises(ValueError, match="backend"):
        kmeans(feats, 2, backend="sklearn")
