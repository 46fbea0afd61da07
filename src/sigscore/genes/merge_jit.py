"""numba kernels behind :mod:`.merge_kernels` for sparse rows (see its docstring).

Kept apart so that merging the columns of a dense matrix (a small bulk file) never imports
numba; :func:`.merge_kernels.merge_columns` imports this module for sparse input only. The
per-row group reduction (:func:`group_scratch`, :func:`accumulate_member`,
:func:`group_value`, :func:`sort_present`) is public: the kernels that read unmerged rows
(the rank methods', mean's, :func:`merged_column_sums`) reduce a row's groups with it, so
their values are the merge's, bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from .merge_kernels import MAX, SUM


@numba.njit(cache=True)
def group_value(acc, s, size, op):
    if op == MAX:
        v = acc[s, 0]
        return v if acc[s, 1] >= size[s] else max(v, 0.0)  # an implicit zero takes part
    if op == SUM:
        return acc[s, 2]
    return acc[s, 2] / size[s]


@numba.njit(cache=True)
def accumulate_member(acc, seen, present, n, s, x, r):
    """Member value ``x`` of group ``s`` added to row ``r``'s reductions (float64, in
    column order); returns the row's count of groups seen so far (``present[:n]``)."""
    if seen[s] != r:  # first member of group s stored in this row
        seen[s] = r
        present[n] = s
        acc[s, 0] = x  # max
        acc[s, 1] = 1.0  # stored members
        acc[s, 2] = x  # sum
        return n + 1
    acc[s, 0] = max(acc[s, 0], x)
    acc[s, 1] += 1.0
    acc[s, 2] += x
    return n


@numba.njit(cache=True)
def sort_present(present, n):
    """``present[:n]`` sorted by slot (= by output column): rows hold few groups."""
    for i in range(1, n):
        v = present[i]
        j = i - 1
        while j >= 0 and present[j] > v:
            present[j + 1] = present[j]
            j -= 1
        present[j + 1] = v


@numba.njit(cache=True)
def _place_groups(out_data, out_idx, start, w, present, n, group_code, acc, size, op, vals, cols):
    """Insert the row's reduced groups (``present[:n]``) among its singles ``[start, w)``,
    keeping columns sorted; returns the row's new end. Merging from the back is in place:
    a row never grows (its groups have at least as many stored members)."""
    sort_present(present, n)
    q = 0
    for i in range(n):
        v = group_value(acc, present[i], size, op)
        if v != 0.0:  # an all-zero group stays implicit, as in the dense matrix
            vals[q] = v
            cols[q] = group_code[present[i]]
            q += 1
    i = w - 1
    dest = w + q - 1
    j = q - 1
    while j >= 0:
        if i >= start and out_idx[i] > cols[j]:
            out_idx[dest] = out_idx[i]
            out_data[dest] = out_data[i]
            i -= 1
        else:
            out_idx[dest] = cols[j]
            out_data[dest] = vals[j]
            j -= 1
        dest -= 1
    return w + q


@numba.njit(cache=True)
def group_scratch(n_groups, in_dtype, idx_dtype):
    """One thread's working arrays for rows' group reductions (see :func:`_merge_row`)."""
    # a group's value is rounded to the input's type (float32 stays float32) before it is
    # stored, so a widened output holds exactly the widened values of a same-type merge
    return (
        np.zeros((n_groups, 3)),  # acc: max, stored members, sum
        np.full(n_groups, -1, np.int64),  # seen: last row holding a member of the group
        np.empty(n_groups, np.int64),  # present: the row's groups
        np.empty(n_groups, in_dtype),  # vals
        np.empty(n_groups, idx_dtype),  # cols
    )


@numba.njit(cache=True)
def _merge_row(
    data, indices, r, lo, hi, target, group_code, size, op, out_data, out_idx, w, end, sc
):
    """Input row ``r`` (stored values ``[lo, hi)``) merged into the output from ``w``;
    returns the output's new end, or -1 if the row's columns are not strictly increasing.
    A canonical row never writes past ``end`` (its merged length, or any bound above it);
    a row that would is not canonical, and stops there (-1) so that it stays in its slot."""
    acc, seen, present, vals, cols = sc
    start = w
    n = 0
    prev = -1
    for k in range(lo, hi):
        c = indices[k]
        if c <= prev:
            return -1
        prev = c
        t = target[c]
        if t >= 0:  # alone in its group: copied under its new column
            if w >= end:
                return -1
            out_idx[w] = t
            out_data[w] = data[k]
            w += 1
            continue
        n = accumulate_member(acc, seen, present, n, -1 - t, data[k], r)
    if n:
        w = _place_groups(
            out_data, out_idx, start, w, present, n, group_code, acc, size, op, vals, cols
        )
    return w


@numba.njit(cache=True)
def _row_length(data, indices, r, lo, hi, target, members, size, op, sc):
    """:func:`_merge_row`'s output length for a canonical row ``r`` (its singles and its
    non-zero groups) without writing it; for any row, a length in ``[0, hi - lo]``.

    The row's group members are found by a binary search for each column of ``members``
    (the members' input columns, ascending): a few dozen reads of a long row, not all."""
    acc, seen, present = sc[0], sc[1], sc[2]
    n = 0
    found = 0
    pos = lo
    for c in members:
        a = pos + np.searchsorted(indices[pos:hi], c)  # first stored column >= c
        if a < hi and indices[a] == c:
            # members ascend, as in a canonical row: reduced in the same order as by
            # _merge_row, so the group's value (and whether it is zero) is the same
            n = accumulate_member(acc, seen, present, n, -1 - target[c], data[a], r)
            found += 1
            a += 1
        pos = a
    length = hi - lo - found
    for i in range(n):
        if group_value(acc, present[i], size, op) != 0.0:
            length += 1
    return length


@numba.njit(cache=True)
def merge_csr(data, indices, indptr, target, group_code, size, op, out_data, out_idx):
    """Merged CSR rows written into ``out_data``/``out_idx`` (as long as the input: merging
    never adds entries; ``out_data`` may be wider than ``data``, e.g. float64 for float32).
    ``target[c] >= 0`` is the output column of a column alone in its group; ``target[c] =
    -1 - s`` marks a member of duplicated group ``s`` (output column ``group_code[s]``).
    Returns ``(True, indptr)``, or ``(False, _)`` as soon as a row's columns are not
    strictly increasing (the caller canonicalises and calls again), so canonical input,
    the usual case, is read once. One thread; :func:`merge_csr_parallel` splits the rows."""
    n_rows = indptr.size - 1
    sc = group_scratch(max(group_code.size, 1), data.dtype, out_idx.dtype)
    out_ptr = np.zeros(n_rows + 1, np.int64)
    w = 0
    for r in range(n_rows):
        w = _merge_row(
            data, indices, r, indptr[r], indptr[r + 1], target, group_code, size, op,
            out_data, out_idx, w, out_idx.size, sc,
        )  # fmt: skip
        if w < 0:
            return False, out_ptr
        out_ptr[r + 1] = w
    return True, out_ptr


#: Rows per chunk of :func:`merge_csr_parallel`; each chunk allocates its own scratch once.
_ROWS_PER_CHUNK = 256
#: Stored values from which :func:`merge_rows` takes the parallel kernel.
PARALLEL_MIN_NNZ = 200_000


@numba.njit(cache=True, parallel=True)
def merge_csr_parallel(
    data, indices, indptr, target, group_code, size, op, out_data, out_idx, members
):
    """:func:`merge_csr` (same arguments, same result bit for bit) on the numba thread pool;
    ``members``: the input columns of the groups' members, ascending.

    A row's output offset depends on how many entries the rows before it lost, so a first
    pass counts each row's merged length; after a prefix sum, a second pass writes every row
    in its slot with :func:`merge_csr`'s own per-row code, which also checks the columns'
    order (a non-canonical row stops inside its slot: the result is then discarded)."""
    n_rows = indptr.size - 1
    n_groups = max(group_code.size, 1)
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    out_ptr = np.zeros(n_rows + 1, np.int64)
    for ch in numba.prange(n_chunks):
        sc = group_scratch(n_groups, data.dtype, out_idx.dtype)
        for r in range(ch * _ROWS_PER_CHUNK, min(n_rows, (ch + 1) * _ROWS_PER_CHUNK)):
            out_ptr[r + 1] = _row_length(
                data, indices, r, indptr[r], indptr[r + 1], target, members, size, op, sc,
            )  # fmt: skip
    for r in range(n_rows):
        out_ptr[r + 1] += out_ptr[r]
    bad = np.zeros(n_chunks, np.bool_)
    for ch in numba.prange(n_chunks):
        sc = group_scratch(n_groups, data.dtype, out_idx.dtype)
        for r in range(ch * _ROWS_PER_CHUNK, min(n_rows, (ch + 1) * _ROWS_PER_CHUNK)):
            w = _merge_row(
                data, indices, r, indptr[r], indptr[r + 1], target, group_code, size, op,
                out_data, out_idx, out_ptr[r], out_ptr[r + 1], sc,
            )  # fmt: skip
            if w != out_ptr[r + 1]:  # -1: not canonical (a canonical row fills its slot)
                bad[ch] = True
                break
    return not bad.any(), out_ptr


def merge_rows(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    target: np.ndarray,
    group_code: np.ndarray,
    size: np.ndarray,
    op: int,
    out_data: np.ndarray,
    out_idx: np.ndarray,
) -> tuple[bool, np.ndarray]:
    """:func:`merge_csr`, by :func:`merge_csr_parallel` when numba has more than one thread
    and the input is large (at least :data:`PARALLEL_MIN_NNZ` stored values) with few
    duplicated columns for its row length, so that counting the rows' merged lengths first
    (a binary search per member column and row) costs little next to the merge itself."""
    n_rows = indptr.size - 1
    members = np.flatnonzero(target < 0).astype(indices.dtype)
    mean_nnz = data.size / max(n_rows, 1)
    # a binary search reads ~log2(row length) values and costs ~4 copied ones (measured)
    cheap_count = 4.0 * members.size * np.log2(mean_nnz + 1.0) < mean_nnz
    if data.size < PARALLEL_MIN_NNZ or not cheap_count or numba.get_num_threads() < 2:
        return merge_csr(data, indices, indptr, target, group_code, size, op, out_data, out_idx)
    return merge_csr_parallel(
        data, indices, indptr, target, group_code, size, op, out_data, out_idx, members
    )


@numba.njit(cache=True, parallel=True)
def merged_column_sums(data, indices, indptr, target, group_code, size, op, n_out, n_slabs):
    """Per-column sums and sums of squares of the merged rows, read from the raw ones:
    ``(ok, acc)``, ``acc[t]`` (2 × ``n_out``) the float64 sums over slab ``t`` of the rows
    (``n_slabs`` equal runs of rows, one per thread), each column's values added in row
    order, exactly as :func:`sigscore.io.blocks.sums_of_block` adds those of the merged
    block (a group's value rounded to the input's type, then widened to float64, as stored;
    an all-zero group stays implicit). ``ok`` is False if a row's columns are not strictly
    increasing (the result is then meaningless: merge the block instead)."""
    n_rows = indptr.size - 1
    acc = np.zeros((n_slabs, 2, n_out))
    step = (n_rows + n_slabs - 1) // n_slabs
    bad = np.zeros(n_slabs, np.bool_)
    for t in numba.prange(n_slabs):
        red, seen, present, vals, _ = group_scratch(
            max(group_code.size, 1), data.dtype, indices.dtype
        )
        for r in range(t * step, min(n_rows, (t + 1) * step)):
            n = 0
            prev = -1
            for k in range(indptr[r], indptr[r + 1]):
                c = indices[k]
                if c <= prev:
                    bad[t] = True
                    break
                prev = c
                g = target[c]
                if g >= 0:  # alone in its group: its column's sums, in row order
                    v = np.float64(data[k])
                    acc[t, 0, g] += v
                    acc[t, 1, g] += v * v
                else:
                    n = accumulate_member(red, seen, present, n, -1 - g, data[k], r)
            if bad[t]:
                break
            for i in range(n):  # the row's groups: one value each, as the merged row holds
                s = present[i]
                v = group_value(red, s, size, op)
                if v != 0.0:
                    vals[0] = v  # rounded to the input's type, as stored by _place_groups
                    x = np.float64(vals[0])
                    acc[t, 0, group_code[s]] += x
                    acc[t, 1, group_code[s]] += x * x
    return not bad.any(), acc
