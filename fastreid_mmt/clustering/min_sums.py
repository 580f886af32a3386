"""Step 6 of the Jaccard distance, ``d(i, j) = 1 - m / (2 - m)`` with
``m(i, j) = sum_l min(V[i, l], V[j, l])``, keeping only what is asked for.

The sum of minima enumerates the triples ``(i, l, j)``, ``j >= i``, of entries
sharing a column ``l`` of ``V`` (row blocks of about ``triple_budget``
triples), adds the duplicates of each ``(i, j)`` with scipy's counting-sort
conversions (in the order of ``l``, as the reference's loop does) and turns
the sums into distances block by block. A block keeps:

* the diagonal;
* every pair with distance below ``cutoff``;
* candidates for a running selection of the ``keep_smallest`` smallest pairs
  at or above ``cutoff`` (and below one): the pairs an eps rule may need
  beyond the cutoff. The selection holds at most ``2 * keep_smallest`` pairs.

Nothing else is stored, so memory is that of one block plus what is kept,
whatever the features. Every triple is still enumerated: on query-expanded
vectors a value bound prunes few of them (see BENCHMARKS.md) and the
selection above needs pairs far below any bound's threshold.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["min_sum_distances"]


def _column_index(v: sp.csr_matrix):
    """Column-major view of ``v``: rows, values, and each entry's CSC position."""
    nnz = v.nnz
    ids = sp.csr_matrix((np.arange(nnz, dtype=np.int64), v.indices, v.indptr), shape=v.shape)
    col_major = ids.tocsc()  # rows ascending inside each column
    csc_pos = np.empty(nnz, dtype=np.int64)
    csc_pos[col_major.data] = np.arange(nnz, dtype=np.int64)
    return col_major, v.data[col_major.data], csc_pos


def _block_sums(v, col_major, csc_vals, csc_pos, counts, cum, start, stop):
    """Sums of minima of rows ``start:stop`` with their partners ``j >= i``.

    Returns:
        (rows, cols, m): int64 global rows, int64 columns and float32 sums,
        one per distinct pair.
    """
    lo, hi = v.indptr[start], v.indptr[stop]
    cnt = counts[lo:hi]
    total = int(cum[hi] - cum[lo])
    shift = np.repeat(csc_pos[lo:hi] - (cum[lo:hi] - cum[lo]), cnt)
    pos = shift + np.arange(total, dtype=np.int64)
    mins = np.repeat(v.data[lo:hi], cnt)
    np.minimum(mins, csc_vals[pos], out=mins)
    row_ptr = cum[v.indptr[start : stop + 1]] - cum[lo]
    part = sp.csr_matrix((mins, col_major.indices[pos], row_ptr), shape=(stop - start, v.shape[0]))
    part = part.tocsc()  # stable counting sort: duplicates of (i, j) adjacent, in l order
    part.sum_duplicates()  # sequential float32 sums, zeros kept
    cols = np.repeat(np.arange(v.shape[0], dtype=np.int64), np.diff(part.indptr))
    return part.indices.astype(np.int64) + start, cols, part.data


class _Smallest:
    """Running selection of the ``size`` smallest distances offered."""

    def __init__(self, size: int):
        self.size = size
        self.bound = np.float32(1.0)  # only distances below this can still enter
        self.parts = []
        self.held = 0

    def offer(self, rows, cols, dist):
        keep = dist < self.bound
        self.parts.append((rows[keep], cols[keep], dist[keep]))
        self.held += int(keep.sum())
        if self.held > 2 * self.size:
            self._shrink()

    def _shrink(self):
        rows, cols, dist = (np.concatenate(a) for a in zip(*self.parts))
        if dist.size > self.size:
            # Ties at the bound are interchangeable: the multiset of values is kept.
            pick = np.argpartition(dist, self.size - 1)[: self.size]
            rows, cols, dist = rows[pick], cols[pick], dist[pick]
            self.bound = dist.max()
        self.parts = [(rows, cols, dist)]
        self.held = dist.size

    def result(self):
        if not self.parts:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float32)
        self._shrink()
        return self.parts[0]


def min_sum_distances(v: sp.csr_matrix, cutoff: float, keep_smallest: int, triple_budget: int):
    """Jaccard distances of the pairs worth storing.

    Args:
        v: (N, N) float32 CSR of the query-expanded vectors, sorted indices,
            positive values.
        cutoff: every pair with distance ``< cutoff`` is returned,
            ``0 < cutoff <= 1``.
        keep_smallest: also return the ``keep_smallest`` smallest pairs
            ``i < j`` at or above ``cutoff`` and below one (all of them if
            fewer; ties at the last value broken arbitrarily).
        triple_budget: approximate number of ``(i, l, j)`` triples per block.

    Returns:
        rows, cols, dist: the pairs ``i < j`` kept (int64, int64, float32,
        each pair once), and diag: (N,) float32 distance of each point to
        itself (about 0).
    """
    num = v.shape[0]
    col_major, csc_vals, csc_pos = _column_index(v)
    # Partners j >= i of entry (i, l): positions csc_pos .. end of column l.
    counts = col_major.indptr[1:].astype(np.int64)[v.indices] - csc_pos
    cum = np.concatenate([[0], np.cumsum(counts)])
    row_cum = cum[v.indptr]  # (N + 1,) triples before each row
    cutoff = np.float32(cutoff)
    diag = np.ones(num, dtype=np.float32)
    kept = []
    smallest = _Smallest(keep_smallest) if keep_smallest > 0 else None
    start = 0
    while start < num:
        stop = int(np.searchsorted(row_cum, row_cum[start] + triple_budget, side="right")) - 1
        stop = min(max(stop, start + 1), num)
        rows, cols, m = _block_sums(v, col_major, csc_vals, csc_pos, counts, cum, start, stop)
        dist = np.float32(1.0) - m / (np.float32(2.0) - m)
        np.maximum(dist, np.float32(0.0), out=dist)
        on_diag = rows == cols
        diag[rows[on_diag]] = dist[on_diag]
        upper = cols > rows
        below = upper & (dist < cutoff)
        kept.append((rows[below], cols[below], dist[below]))
        if smallest is not None:
            above = upper & ~below
            smallest.offer(rows[above], cols[above], dist[above])
        start = stop
    if smallest is not None:
        kept.append(smallest.result())
    rows, cols, dist = (np.concatenate(a) for a in zip(*kept))
    return rows, cols, dist, diag
