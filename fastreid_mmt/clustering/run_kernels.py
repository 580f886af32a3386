"""Two sequential loops of the sum of minima, run by scipy's compiled sparse kernels.

* :func:`gather_runs` concatenates runs ``[starts[k], stops[k])`` of two parallel
  arrays (scipy's ``csr_row_index``: the row selection of a CSR matrix, here
  on an index pointer whose "rows" are the runs).
* :func:`add_rows` adds ``values`` into a dense array row by row, in the order
  given, as ``np.add.at`` would (scipy's ``csr_todense``, which adds rather
  than assigns, so duplicates sum up in order).

Both write into caller-owned arrays and release the GIL, so worker threads run
them in parallel. numpy's equivalents (positions by ``np.repeat`` plus an
``arange``, two fancy-index gathers, a flat key, ``np.add.at``) take five
more passes over the triples and allocate each time: on the benchmark's hub
features (8,000 rows, 58 M triples) the sums took about 0.55 s with them against
about 0.2 s with these kernels, one thread each (a loaded machine).
The kernels are private to scipy (``scipy.sparse._sparsetools``, behind its own
CSR row indexing and ``toarray``); when they are missing the numpy equivalents
are used, with the same results bit for bit (``tests/test_min_sums.py``).
"""

import numpy as np

try:
    from scipy.sparse._sparsetools import csr_row_index, csr_todense
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    csr_row_index = csr_todense = None

__all__ = ["gather_runs", "add_rows"]


def gather_runs(bounds, first, count, indices, data, out_indices, out_data):
    """Concatenates runs of ``indices`` and ``data``.

    Args:
        bounds: (2 R,) interleaved run bounds ``start_0, stop_0, start_1, ...``,
            the dtype of ``indices``.
        first: first run to gather.
        count: number of runs to gather (``first .. first + count - 1``).
        indices: integer array the runs index (int32 or int64).
        data: float32 array parallel to ``indices``.
        out_indices: output, at least the total run length, dtype of
            ``indices``; its prefix receives the runs in order.
        out_data: likewise for ``data``.
    """
    if csr_row_index is None:
        starts, stops = bounds[2 * first : 2 * (first + count) : 2], bounds[2 * first + 1 : 2 * (first + count) : 2]
        lengths = stops - starts
        total = int(lengths.sum())
        pos = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(starts.dtype), lengths)
        pos += np.arange(total, dtype=pos.dtype)
        out_indices[:total] = indices[pos]
        out_data[:total] = data[pos]
        return
    select = np.arange(2 * first, 2 * (first + count), 2, dtype=bounds.dtype)
    csr_row_index(count, select, bounds, indices, data, out_indices, out_data)


def add_rows(out, width, indptr, cols, values):
    """``out[r * width + cols[k]] += values[k]`` for ``k`` in ``indptr[r] .. indptr[r + 1] - 1``.

    The additions run in the order of ``k``: each element receives its values in
    the order they appear, as with ``np.add.at``.

    Args:
        out: 1-D float32 contiguous array, large enough for every target.
        width: row stride of ``out``.
        indptr: (S + 1,) row pointer into ``cols`` and ``values`` (``indptr[0] = 0``),
            dtype of ``cols``.
        cols: int32 or int64 offsets within each row (``>= 0``).
        values: float32 values.
    """
    rows = indptr.size - 1
    if csr_todense is None:
        total = int(indptr[-1])
        key = np.repeat(np.arange(rows, dtype=np.int64) * width, np.diff(indptr))
        key += cols[:total]
        np.add.at(out, key, values[:total])
        return
    csr_todense(rows, width, indptr, cols, values, out)
