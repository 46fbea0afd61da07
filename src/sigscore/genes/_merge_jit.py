"""numba kernels behind :mod:`.merge_kernels` for sparse rows (see its docstring).

Kept apart so that merging the columns of a dense matrix (a small bulk file) never imports
numba; :func:`.merge_kernels.merge_columns` imports this module for sparse input only.
"""

from __future__ import annotations

import numba
import numpy as np

from .merge_kernels import MAX, SUM


@numba.njit(cache=True)
def _group_value(acc, s, size, op):
    if op == MAX:
        v = acc[s, 0]
        return v if acc[s, 1] >= size[s] else max(v, 0.0)  # an implicit zero takes part
    if op == SUM:
        return acc[s, 2]
    return acc[s, 2] / size[s]


@numba.njit(cache=True)
def _place_groups(out_data, out_idx, start, w, present, n, group_code, acc, size, op, vals, cols):
    """Insert the row's reduced groups (``present[:n]``) among its singles ``[start, w)``,
    keeping columns sorted; returns the row's new end. Merging from the back is in place:
    a row never grows (its groups have at least as many stored members)."""
    for i in range(1, n):  # insertion sort by slot (= by output column): rows hold few groups
        v = present[i]
        j = i - 1
        while j >= 0 and present[j] > v:
            present[j + 1] = present[j]
            j -= 1
        present[j + 1] = v
    q = 0
    for i in range(n):
        v = _group_value(acc, present[i], size, op)
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
def merge_csr(data, indices, indptr, target, group_code, size, op, out_data, out_idx):
    """Merged CSR rows written into ``out_data``/``out_idx`` (as long as the input: merging
    never adds entries; ``out_data`` may be wider than ``data``, e.g. float64 for float32). ``target[c] >= 0`` is the output column of a column alone in its
    group; ``target[c] = -1 - s`` marks a member of duplicated group ``s`` (output column
    ``group_code[s]``). Returns ``(True, indptr)``, or ``(False, _)`` as soon as a row's
    columns are not strictly increasing (the caller canonicalises and calls again), so
    canonical input, the usual case, is read once."""
    n_rows = indptr.size - 1
    n_groups = max(group_code.size, 1)
    acc = np.zeros((n_groups, 3))
    seen = np.full(n_groups, -1, np.int64)
    present = np.empty(n_groups, np.int64)
    # a group's value is rounded to the input's type (float32 stays float32) before it is
    # stored, so a widened output holds exactly the widened values of a same-type merge
    vals = np.empty(n_groups, data.dtype)
    cols = np.empty(n_groups, out_idx.dtype)
    out_ptr = np.zeros(n_rows + 1, np.int64)
    w = 0
    for r in range(n_rows):
        start = w
        n = 0
        prev = -1
        for k in range(indptr[r], indptr[r + 1]):
            c = indices[k]
            if c <= prev:
                return False, out_ptr
            prev = c
            t = target[c]
            if t >= 0:  # alone in its group: copied under its new column
                out_idx[w] = t
                out_data[w] = data[k]
                w += 1
                continue
            s = -1 - t
            x = data[k]
            if seen[s] != r:  # first member of group s stored in this row
                seen[s] = r
                present[n] = s
                n += 1
                acc[s, 0] = x  # max
                acc[s, 1] = 1.0  # stored members
                acc[s, 2] = x  # sum
            else:
                acc[s, 0] = max(acc[s, 0], x)
                acc[s, 1] += 1.0
                acc[s, 2] += x
        if n:
            w = _place_groups(
                out_data, out_idx, start, w, present, n, group_code, acc, size, op, vals, cols
            )
        out_ptr[r + 1] = w
    return True, out_ptr
