"""Steps 2-5 of the Jaccard distance: the sampled product does not depend on its column tiles."""

import numpy as np
import scipy.sparse as sp
import torch

from fastreid_mmt.clustering import reciprocal


def test_tiled_dots_equal_one_product_bit_for_bit(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(300, 24, generator=gen)
    pattern = sp.random(300, 300, density=0.05, format="csr", random_state=1)
    pattern.sort_indices()
    whole = reciprocal.pattern_dots(feats, pattern)
    monkeypatch.setattr(reciprocal, "TILE_BYTES", 37 * 24 * 4)  # 37 columns a tile, the last one short
    tiled = reciprocal.pattern_dots(feats, pattern)
    assert torch.equal(whole, tiled)
    rows = np.repeat(np.arange(300), np.diff(pattern.indptr))
    expected = (feats[torch.from_numpy(rows)] * feats[torch.from_numpy(pattern.indices.astype(np.int64))]).sum(dim=1)
    torch.testing.assert_close(tiled, expected, rtol=1e-5, atol=1e-5)


def _expansion_sets(feats, k1):
    from fastreid_mmt.clustering.knn import knn

    sq_dist, rank = knn(feats, k1)
    rank = rank.numpy()
    recip = reciprocal.reciprocal_mask(rank, k1 + 1)
    half = reciprocal.reciprocal_mask(rank, int(np.around(k1 / 2)) + 1)
    return sq_dist.numpy(), rank, reciprocal.expansion_pattern(rank, recip, half)


def test_known_entries_are_the_search_values_of_those_pairs():
    from fastreid_mmt_lab.synthetic.features import hub_features

    feats, _ = hub_features(600, 32, seed=3)
    sq_dist, rank, pattern = _expansion_sets(feats, 12)
    pos, values = reciprocal.known_entries(pattern, rank, sq_dist)
    assert 0 < pos.size < pattern.nnz  # hub features: some members of E(i) are beyond i's k-NN list
    assert np.all(np.diff(pos) > 0)
    rows = np.repeat(np.arange(600), np.diff(pattern.indptr))[pos]
    cols = pattern.indices[pos]
    truth = (feats[torch.from_numpy(rows)] - feats[torch.from_numpy(cols.astype(np.int64))]).pow(2).sum(dim=1)
    np.testing.assert_allclose(values, truth.numpy(), atol=2e-5)
    # Every pair the search holds, one way or the other, is found.
    listed = {(i, j) for i in range(600) for j in rank[i]}
    members = set(zip(np.repeat(np.arange(600), np.diff(pattern.indptr)).tolist(), pattern.indices.tolist()))
    expected = {p for p in members if p in listed or p[::-1] in listed}
    assert expected == set(zip(rows.tolist(), cols.tolist()))


def test_weights_with_known_distances_equal_the_sampled_ones():
    from fastreid_mmt_lab.synthetic.features import hub_features

    feats, _ = hub_features(600, 32, seed=3)
    sq_dist, rank, pattern = _expansion_sets(feats, 12)
    sampled = reciprocal.softmax_weights(feats, pattern)
    reused = reciprocal.softmax_weights(feats, pattern, known=(rank, sq_dist))
    np.testing.assert_allclose(reused, sampled, rtol=2e-5, atol=1e-7)
    sums = np.add.reduceat(reused, pattern.indptr[:-1])
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
