"""The sum of minima's code paths agree bit for bit: scipy kernels or numpy, 1 or more threads."""

import numpy as np
import pytest

from fastreid_mmt.clustering import min_sums, run_kernels
from fastreid_mmt.clustering.jaccard import _encoding_vectors
from fastreid_mmt.clustering.knn import knn
from fastreid_mmt_lab.synthetic.features import hub_features


@pytest.fixture(scope="module")
def vectors():
    feats, _ = hub_features(700, 32, seed=5)
    _, rank = knn(feats, 20)
    return _encoding_vectors(feats, rank.numpy(), 20, 6, None)


def literal_sums(v):
    """Dense ``m(i, j) = sum_l min(V[i, l], V[j, l])``, added in the order of ``l``."""
    dense = v.toarray()
    out = np.zeros((v.shape[0], v.shape[0]), dtype=np.float32)
    for col in range(v.shape[1]):
        out += np.minimum(dense[:, col, None], dense[None, :, col])
    return out


def without_kernels(monkeypatch):
    monkeypatch.setattr(run_kernels, "csr_row_index", None)
    monkeypatch.setattr(run_kernels, "csr_todense", None)


def test_kernels_match_numpy(monkeypatch):
    gen = np.random.default_rng(0)
    indices = gen.integers(0, 50, 1000).astype(np.int32)
    data = gen.random(1000, dtype=np.float32)
    starts = gen.integers(0, 900, 40)
    bounds = np.stack([starts, starts + gen.integers(0, 100, 40)], axis=1).ravel().astype(np.int32)
    total = int((bounds[1::2] - bounds[0::2])[5:30].sum())
    indptr = np.concatenate([[0], np.sort(gen.integers(0, total, 6)), [total]]).astype(np.int32)
    results = []
    for use_kernels in (True, False):
        if not use_kernels:
            without_kernels(monkeypatch)
        got_idx, got_data = np.zeros(total + 3, np.int32), np.zeros(total + 3, np.float32)
        run_kernels.gather_runs(bounds, 5, 25, indices, data, got_idx, got_data)
        dense = np.zeros(7 * 60, np.float32)
        run_kernels.add_rows(dense, 60, indptr, got_idx, got_data)
        results.append((got_idx, got_data, dense))
    for ours, numpy_only in zip(*results):
        np.testing.assert_array_equal(ours, numpy_only)
    pos = np.concatenate([np.arange(s, e) for s, e in zip(bounds[10:60:2], bounds[11:60:2])])
    np.testing.assert_array_equal(results[0][1][:total], data[pos])
    expected = np.zeros(7 * 60, np.float32)
    np.add.at(expected, np.repeat(np.arange(7) * 60, np.diff(indptr)) + indices[pos], data[pos])
    np.testing.assert_array_equal(results[0][2], expected)


@pytest.mark.parametrize("workers", [1, 3])
def test_sums_match_literal_loop(vectors, workers):
    rows, cols, dist, diag = min_sums.min_sum_distances(vectors, 1.0, 0, triple_budget=1 << 14, workers=workers)
    m = literal_sums(vectors)
    literal = np.maximum(np.float32(1.0) - m / (np.float32(2.0) - m), np.float32(0.0))
    np.testing.assert_array_equal(diag, np.diag(literal))
    upper = np.triu(literal < 1.0, 1)
    assert rows.size == np.count_nonzero(upper)
    np.testing.assert_array_equal(dist, literal[rows, cols])


@pytest.mark.parametrize("keep", [0, 50, 300, 5000])
@pytest.mark.parametrize("slack", [min_sums.SAMPLE_SLACK, 0.2])  # 0.2: the sampled threshold is too high, retried
def test_paths_agree_bit_for_bit(vectors, keep, slack, monkeypatch):
    monkeypatch.setattr(min_sums, "SAMPLE_SLACK", slack)

    def run(workers):
        rows, cols, dist, diag = min_sums.min_sum_distances(vectors, 0.9, keep, triple_budget=1 << 14, workers=workers)
        order = np.lexsort((cols, rows))
        return rows[order], cols[order], dist[order], diag

    reference = run(1)
    others = [run(3)]
    without_kernels(monkeypatch)
    others.append(run(2))
    for other in others:
        for ours, theirs in zip(reference, other):
            np.testing.assert_array_equal(ours, theirs)
    # The selection holds the `keep` smallest distances in [0.9, 1) (their values, ties aside).
    full = min_sums.min_sum_distances(vectors, 1.0, 0, triple_budget=1 << 14, workers=1)[2]
    beyond = np.sort(full[full >= 0.9])[:keep]
    np.testing.assert_array_equal(np.sort(reference[2][reference[2] >= 0.9]), beyond)
    np.testing.assert_array_equal(np.sort(reference[2][reference[2] < 0.9]), np.sort(full[full < 0.9]))
