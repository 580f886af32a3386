"""Step 6 of the Jaccard distance, ``d(i, j) = 1 - m / (2 - m)`` with
``m(i, j) = sum_l min(V[i, l], V[j, l])``, keeping only what is asked for.

The sum of minima enumerates the triples ``(i, l, j)``, ``j >= i``, of entries
sharing a column ``l`` of ``V``: entry ``(i, l)`` meets the rows ``j >= i`` of
column ``l``, a run of a column-major copy of ``V``. Rows go in blocks (at
most ``triple_budget`` triples and ``dense_budget`` sums each). A block
gathers its runs (partners and their values), takes the minima, and adds them
into a dense ``rows x (N - start)`` float32 slice entry by entry in CSR order,
i.e. for each pair in the order of ``l``, as the reference's loop does: the
sums are bit for bit those of that loop. Both loops are scipy's compiled
sparse kernels (:mod:`.run_kernels`), which release the GIL: ``workers``
threads compute blocks in parallel, each with its own arrays (a dense slice,
8 bytes per triple, and ``np.repeat``'s 4). A block then keeps

* the diagonal;
* every pair with distance below ``cutoff``;
* candidates for a running selection of the ``keep_smallest`` smallest pairs
  at or above ``cutoff`` (and below one): the pairs an eps rule may need
  beyond the cutoff. The selection holds at most ``2 * keep_smallest`` pairs.
  A block offers the pairs below the selection's bound when the block was
  submitted, or only its own ``~1.5 keep_smallest`` closest pairs beyond the
  cutoff if it has that many (a threshold on sums read off a sample, checked
  on the distances), so the first blocks, submitted before any bound is known,
  do not offer all of their pairs.

Nothing else is stored: memory is one block per worker plus what is kept,
whatever the features. Time is the number of triples plus ``N^2 / 2`` cheap
dense reads. Every triple is enumerated, exactly: value bounds do not pay
here. Prefix filtering (a pair with ``m > t = 2(1 - c)/(2 - c)`` shares a
column within the prefixes of both rows, under a global column order, once
each row's suffix sums to less than ``t``) still keeps 73% of the triples at
``c = 0.9`` and 92% at ``c = 0.98`` on the benchmark's hub features
(N = 8,000): the query-expanded rows hold ~120 small, similar values. And the
selection above needs pairs far beyond any such threshold.
"""

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from .run_kernels import add_rows, gather_runs

__all__ = ["min_sum_distances"]

THRESHOLD_MARGIN = 1e-6  # relative and absolute slack of the pre-selection on sums of minima
SAMPLE_STRIDE = 8  # a block's own threshold for the smallest pairs is read off every 8th sum
SAMPLE_SLACK = 1.5  # ... aiming at 1.5 times the pairs needed


def _column_index(v: sp.csr_matrix):
    """Column-major view of ``v``: rows, values, and each entry's CSC position."""
    nnz = v.nnz
    ids = sp.csr_matrix((np.arange(nnz, dtype=np.int64), v.indices, v.indptr), shape=v.shape)
    col_major = ids.tocsc()  # rows ascending inside each column
    csc_pos = np.empty(nnz, dtype=np.int64)
    csc_pos[col_major.data] = np.arange(nnz, dtype=np.int64)
    return col_major, v.data[col_major.data], csc_pos


class _Runs:
    """The partners ``j >= i`` of every entry ``(i, l)`` of ``v``, as runs of the CSC copy.

    Entry ``e = (i, l)`` (CSR order) pairs with the CSC positions ``csc_pos[e]`` to the end
    of column ``l``: rows ``j >= i`` of that column, ascending.
    """

    def __init__(self, v: sp.csr_matrix, triple_budget: int):
        col_major, csc_vals, csc_pos = _column_index(v)
        stops = col_major.indptr[1:].astype(np.int64)[v.indices]
        self.cum = np.concatenate([[0], np.cumsum(stops - csc_pos)])  # triples before each entry
        self.row_cum = self.cum[v.indptr]  # triples before each row
        # A block holds at most the budget or one row; int32 halves the traffic when they fit.
        largest = max(v.nnz, triple_budget, int(np.diff(self.row_cum).max(initial=0)))
        self.index = np.int32 if largest < np.iinfo(np.int32).max else np.int64
        self.bounds = np.empty(2 * v.nnz, dtype=self.index)
        self.bounds[0::2], self.bounds[1::2] = csc_pos, stops
        self.rows = col_major.indices.astype(self.index)  # row j of each CSC position
        self.vals = csc_vals

    def triples(self, start, stop):
        """Number of triples of rows ``start:stop``."""
        return int(self.row_cum[stop] - self.row_cum[start])


def _block_sums(v, runs, start, stop, scratch):
    """Sums of minima of rows ``start:stop`` with their partners ``j >= start``.

    The triples come entry by entry in CSR order (rows, then ``l`` ascending), so the
    dense slice receives, for each pair, its minima in the order of ``l``, as the
    reference's loop adds them (:func:`.run_kernels.add_rows`: ``np.add.at`` order).

    Returns:
        (S, W) float32 view of ``scratch.dense``: ``m(start + r, start + c)``, zero for
        pairs sharing no column (and for ``c < r``).
    """
    num, rows = v.shape[0], stop - start
    width = num - start
    lo, hi = v.indptr[start], v.indptr[stop]
    total = runs.triples(start, stop)
    partner, minima = scratch.partner[:total], scratch.minima[:total]
    gather_runs(runs.bounds, lo, hi - lo, runs.rows, runs.vals, partner, minima)
    np.minimum(minima, np.repeat(v.data[lo:hi], np.diff(runs.cum[lo : hi + 1])), out=minima)
    indptr = (runs.cum[v.indptr[start : stop + 1]] - runs.cum[lo]).astype(runs.index)
    # Partner j lands at r * width + j: the slice of row r starts at start + r * width.
    target = scratch.dense[: rows * width + start]
    target.fill(0.0)
    add_rows(target, width, indptr, partner, minima)
    return target[start:].reshape(rows, width)


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


def _threshold(dist_bound: np.float32) -> np.float32:
    """A sum of minima below which the distance is surely ``>= dist_bound``.

    ``d < b  <=>  m > 2 (1 - b) / (2 - b)``; the margin absorbs float32 rounding of ``d``
    (the kept pairs are then chosen on ``d`` itself).
    """
    exact = 2.0 * (1.0 - float(dist_bound)) / (2.0 - float(dist_bound))
    return np.float32(max(0.0, exact * (1.0 - THRESHOLD_MARGIN) - THRESHOLD_MARGIN))


class _Scratch(threading.local):
    """Per-thread arrays of one block: the dense slice, and the partners and minima of its triples."""

    def __init__(self, dense: int, triples: int, index):
        self.dense = np.empty(dense, dtype=np.float32)
        self.partner = np.empty(triples, dtype=index)
        self.minima = np.empty(triples, dtype=np.float32)


def _sampled_threshold(flat, low, high, keep):
    """A sum of minima above which, likely, ``keep`` pairs of the block lie in ``(low, high]``.

    Read off every ``SAMPLE_STRIDE``-th sum, with room to spare; ``None`` if the sample
    shows too few. The caller checks the count on the distances themselves.
    """
    sample = flat[::SAMPLE_STRIDE]
    sample = sample[(sample > low) & (sample <= high)]
    rank = int(SAMPLE_SLACK * keep / SAMPLE_STRIDE) + 1
    if sample.size <= rank:
        return None
    return np.partition(sample, sample.size - rank)[sample.size - rank]


def _distances(flat, where):
    m = flat[where]
    dist = np.float32(1.0) - m / (np.float32(2.0) - m)
    return np.maximum(dist, np.float32(0.0), out=dist)


def _block_pairs(v, runs, start, stop, scratch, cutoff, bound, keep):
    """Distances of block ``start:stop``: diagonal, the pairs ``i < j`` below ``cutoff``,
    and candidates for the ``keep`` smallest at or above it (below ``bound``).

    The candidates are all pairs below ``bound``, or fewer when the block alone has
    ``keep`` pairs in ``[cutoff, 1)``: those with the largest sums, down to a sampled
    threshold, once at least ``keep`` of them are in ``[cutoff, 1)`` (the distance does
    not increase with the sum, so any pair left out ties with or follows these ``keep``).

    Returns:
        (diag, rows, cols, dist): (S,) float32, then int64, int64, float32 per pair.
    """
    sums = _block_sums(v, runs, start, stop, scratch)
    rows, width = sums.shape
    flat = sums.reshape(-1)  # a view: the slice is contiguous
    on_diag = np.arange(rows) * (width + 1)
    m_diag = flat[on_diag]
    diag = np.maximum(np.float32(1.0) - m_diag / (np.float32(2.0) - m_diag), np.float32(0.0))
    flat[on_diag] = 0.0  # only c > r can be non-zero now
    low = _threshold(max(cutoff, bound))
    where = None
    if keep > 0:
        high = _threshold(cutoff)
        tight = _sampled_threshold(flat, low, high, keep)
        if tight is not None:
            where = np.flatnonzero(flat > tight)
            dist = _distances(flat, where)
            if np.count_nonzero((dist >= cutoff) & (dist < 1.0)) < keep:
                where = None  # the sample misled: all candidates then
    if where is None:
        where = np.flatnonzero(flat > low)
        dist = _distances(flat, where)
    row, col = np.divmod(where, width)
    return diag, row + start, col + start, dist


def _blocks(v, row_cum, triple_budget, dense_budget):
    """Row ranges ``(start, stop)`` within both budgets (at least one row each)."""
    num, start, out = v.shape[0], 0, []
    while start < num:
        stop = int(np.searchsorted(row_cum, row_cum[start] + triple_budget, side="right")) - 1
        stop = min(max(stop, start + 1), num, start + max(1, dense_budget // (num - start)))
        out.append((start, stop))
        start = stop
    return out


def min_sum_distances(v: sp.csr_matrix, cutoff: float, keep_smallest: int, triple_budget: int,
                      dense_budget: int = 1 << 22, workers: int = 2):
    """Jaccard distances of the pairs worth storing.

    Args:
        v: (N, N) float32 CSR of the query-expanded vectors, sorted indices,
            positive values.
        cutoff: every pair with distance ``< cutoff`` is returned,
            ``0 < cutoff <= 1``.
        keep_smallest: also return the ``keep_smallest`` smallest pairs
            ``i < j`` at or above ``cutoff`` and below one (all of them if
            fewer; ties at the last value broken arbitrarily).
        triple_budget: at most about this many ``(i, l, j)`` triples per block
            (12 bytes each with int32 indices, 16 with int64, per worker).
        dense_budget: at most about this many float32 sums per block.
        workers: threads computing blocks (the kernels release the GIL); the
            results are merged in block order, so they do not depend on it
            (but for the choice among pairs tied at the selection's last value).

    Returns:
        rows, cols, dist: the pairs ``i < j`` kept (int64, int64, float32,
        each pair once), and diag: (N,) float32 distance of each point to
        itself (about 0).
    """
    num = v.shape[0]
    runs = _Runs(v, triple_budget)
    size = max(dense_budget, num)
    blocks = _blocks(v, runs.row_cum, triple_budget, size)
    largest = max(runs.triples(start, stop) for start, stop in blocks)
    scratch = _Scratch(size + num, largest, runs.index)  # one set per thread
    cutoff = np.float32(cutoff)
    diag = np.ones(num, dtype=np.float32)
    kept = []
    smallest = _Smallest(keep_smallest) if keep_smallest > 0 else None
    pending = deque()

    def merge():
        (start, stop), future = pending.popleft()
        diag[start:stop], rows, cols, dist = future.result()
        below = dist < cutoff
        kept.append((rows[below], cols[below], dist[below]))
        if smallest is not None:
            smallest.offer(rows[~below], cols[~below], dist[~below])

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for block in blocks:
            bound = cutoff if smallest is None else smallest.bound  # read at submission
            pending.append((block, pool.submit(_block_pairs, v, runs, *block, scratch, cutoff, bound, keep_smallest)))
            if len(pending) > 2 * workers:
                merge()
        while pending:
            merge()
    if smallest is not None:
        kept.append(smallest.result())
    rows, cols, dist = (np.concatenate(a) for a in zip(*kept))
    return rows, cols, dist, diag
