"""Slow, dense, literal re-statement of MMT's Jaccard distance and eps rule, for small N.

It follows ``mmt/utils/rerank.py`` ``compute_jaccard_dist`` (lambda_value 0, the default) and
the eps lines of ``examples/mmt_train_dbscan.py`` step by step, with the same dense ``N x N``
arrays, float32 arithmetic and per-point loops; only the Python is ours. Memory is a few
``N x N`` float32 arrays: use it for N up to a few thousand.
"""

import numpy as np
import torch

__all__ = ["mmt_jaccard_dense", "mmt_eps_rule"]

QE_CHUNK = 256  # rows per query-expansion chunk


def _reciprocal(order, i, k):
    """``R(i)``: among the first ``k + 1`` of ``order[i]``, those that rank ``i`` there too."""
    forward = order[i, : k + 1]
    back = order[forward, : k + 1]
    return forward[(back == i).any(axis=1)]


def mmt_jaccard_dense(features, k1=20, k2=6):
    """MMT's k-reciprocal Jaccard distance, dense.

    Args:
        features: (N, D) float tensor (MMT passes L2-normalised rows).
        k1, k2: the reference's defaults 20 and 6.

    Returns:
        (N, N) float32 numpy array.
    """
    x = features.detach().float().cpu()
    num = x.shape[0]
    # "original distance": 2 |x_i|^2 - 2 x_i . x_j, divided by the maximum of its column,
    # then transposed, so that row i holds column i of the raw matrix.
    raw = (x.pow(2).sum(dim=1, keepdim=True) * 2).expand(num, num) - 2 * (x @ x.t())
    scaled = (raw / raw.max(dim=0).values).t().contiguous()
    order = torch.argsort(scaled, dim=-1).numpy()
    scaled = scaled.numpy()

    half = int(np.around(k1 / 2))
    sets = [_reciprocal(order, i, k1) for i in range(num)]
    half_sets = [_reciprocal(order, i, half) for i in range(num)]
    vec = np.zeros((num, num), dtype=np.float32)
    for i in range(num):
        members = sets[i]
        expansion = [members]
        for cand in members:
            cand_set = half_sets[cand]
            if len(np.intersect1d(cand_set, members)) > 2 / 3 * len(cand_set):
                expansion.append(cand_set)
        expansion = np.unique(np.concatenate(expansion))
        weight = np.exp(-scaled[i, expansion])
        vec[i, expansion] = weight / weight.sum()

    if k2 != 1:  # the mean of the k2 nearest rows (in row chunks, to bound the (n, k2, N) temporary)
        vec = np.concatenate([vec[order[a : a + QE_CHUNK, :k2]].sum(axis=1) for a in range(0, num, QE_CHUNK)])
        vec /= np.float32(k2)

    holders = [np.nonzero(vec[:, col])[0] for col in range(num)]
    out = np.zeros((num, num), dtype=np.float32)
    for i in range(num):
        acc = np.zeros(num, dtype=np.float32)
        for col in np.nonzero(vec[i])[0]:
            rows = holders[col]
            acc[rows] = acc[rows] + np.minimum(vec[i, col], vec[rows, col])
        out[i] = 1 - acc / (2 - acc)
    out[out < 0] = 0.0
    return out


def mmt_eps_rule(dist, rho=1.6e-3):
    """Mean of the ``round(rho * count)`` smallest non-zero distances of the strict upper triangle."""
    upper = np.triu(dist, 1)
    values = np.sort(upper[np.nonzero(upper)], axis=None)
    top = np.round(rho * values.size).astype(int)
    return float(values[:top].mean())
