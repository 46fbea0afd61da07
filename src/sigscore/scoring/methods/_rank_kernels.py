"""numba kernels behind :mod:`._ranks` (tie counts, rank-transform segment sums).

Kept apart so that importing the rank methods never imports numba: :mod:`._ranks` loads
this module on the first input large enough to need it (see ``_ranks.SMALL_CELLS``); the
algorithms are described there. Compiled with ``cache=True``, so the JIT cost (~1-3 s) is
paid once per machine, and run rows in parallel (``prange``) on the numba thread pool.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from sigscore.genes.merge_jit import accumulate_member, group_scratch, group_value, sort_present

from ._ranks import ASC_AVERAGE, AUCELL, AUCELL_ORDINAL, UCELL


@njit(cache=True, inline="always")
def _count_less(a: np.ndarray, v: float) -> int:
    """Number of elements of ascending ``a`` strictly less than ``v`` (``searchsorted`` left)."""
    lo = 0
    hi = a.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _count_le(a: np.ndarray, v: float) -> int:
    """Number of elements of ascending ``a`` less than or equal to ``v`` (``searchsorted`` right)."""
    lo = 0
    hi = a.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _row_tie_counts(
    data: np.ndarray,
    indices: np.ndarray,
    lo: int,
    hi: int,
    n_genes: int,
    upos: np.ndarray,
    greater: np.ndarray,
    equal: np.ndarray,
    univ_cols: np.ndarray,
    before: np.ndarray,
) -> None:
    """Fill ``greater``/``equal`` (length = universe size) for the row ``data[lo:hi]``.

    When ``before`` is non-empty it also receives, per universe gene, how many genes with the
    same value have a smaller column index (ordinal tie-breaking by column order, as
    ``scipy.stats.rankdata(-row, "ordinal")``); this needs sorted CSR column indices and
    ``univ_cols`` (the universe genes' columns, ascending).

    Instead of sorting the row (O(nnz log nnz)) we sort only the distinct non-zero values of
    the row's set genes (``u`` of them; a few dozen for count data) and place every stored
    value of the row into that grid with a binary search: O(nnz log u + m log m).
    """
    nnz = hi - lo
    n_implicit = n_genes - nnz
    # 1. the row's non-zero set-gene values ("queries")
    m = 0
    for k in range(lo, hi):
        if upos[indices[k]] >= 0 and data[k] != 0.0:
            m += 1
    qk = np.empty(m, dtype=np.int64)
    qv = np.empty(m, dtype=np.float64)
    m = 0
    for k in range(lo, hi):
        if upos[indices[k]] >= 0 and data[k] != 0.0:
            qk[m] = k
            qv[m] = data[k]
            m += 1
    uq = np.unique(qv)  # sorted distinct query values
    u = uq.size
    # 2. histogram of all stored values on the grid of query values
    between = np.zeros(u + 1, dtype=np.int64)  # values strictly between grid points
    at = np.zeros(u, dtype=np.int64)  # values equal to a grid point
    want_before = before.size > 0
    if want_before:
        # zeros: the zeros left of column c are c minus the stored non-zeros left of c
        k = lo
        nz_left = 0
        for p in range(univ_cols.size):
            c = univ_cols[p]
            while k < hi and indices[k] < c:
                if data[k] != 0.0:
                    nz_left += 1
                k += 1
            before[p] = c - nz_left
    n_pos = 0
    n_zero_stored = 0
    for k in range(lo, hi):
        x = data[k]
        if x > 0.0:
            n_pos += 1
        elif x == 0.0:
            n_zero_stored += 1
        j = _count_less(uq, x)
        if j < u and uq[j] == x:
            if want_before and x != 0.0 and upos[indices[k]] >= 0:
                before[upos[indices[k]]] = at[j]  # equal values seen so far, in column order
            at[j] += 1
        else:
            between[j] += 1
    # 3. the zero block (stored or implicit zeros): every positive value is greater
    greater[:] = n_pos
    equal[:] = n_implicit + n_zero_stored
    # 4. queries: n_le(q_j) = sum(between[:j+1] + at[:j+1]), plus implicit zeros when q_j > 0
    n_le = np.empty(u, dtype=np.int64)
    acc = 0
    for j in range(u):
        acc += between[j] + at[j]
        n_le[j] = acc
    for t in range(m):
        j = _count_less(uq, qv[t])
        le = n_le[j]
        if qv[t] > 0.0:
            le += n_implicit  # negatives (and zeros) rank below; positives above the zeros
        p = upos[indices[qk[t]]]
        greater[p] = n_genes - le
        equal[p] = at[j]


#: Up to this many distinct query values, a row's counts are taken by one linear pass over
#: its stored values per query value (branch-free, vectorised by LLVM); above it, each stored
#: value is binned into the query grid by binary search. Count data (single-cell UMIs,
#: log1p-normalised or not) has a handful of distinct values per row among the set genes.
_LINEAR_GRID = 16
#: Rows per parallel work item of :func:`segment_sums_csr` (each allocates its scratch once).
_ROWS_PER_CHUNK = 64
#: Queries sorted by insertion sort up to this many (no allocation), by ``np.sort`` above.
_INSERTION_SORT = 64


@njit(cache=True)
def _row_query_counts(
    data: np.ndarray,
    indices: np.ndarray,
    lo: int,
    hi: int,
    n_genes: int,
    qpos: np.ndarray,
    kind: np.ndarray,
    qp: np.ndarray,
    qv: np.ndarray,
    qg: np.ndarray,
    qe: np.ndarray,
    uq: np.ndarray,
    ugt: np.ndarray,
    ueq: np.ndarray,
    r: int,
    mg: tuple,
) -> tuple[int, int, int, int]:
    """Like :func:`_row_tie_counts` but only for the row's non-zero set genes.

    Fills, for the ``m`` non-zero set genes of the row, their universe positions
    ``qp[:m]``, values ``qv[:m]``, ``greater`` ``qg[:m]`` and ``equal`` ``qe[:m]``; returns
    ``m``, ``m1`` and the shared ``(greater, equal)`` of every set gene that is zero in the
    row. ``qp[:m1]`` and ``qp[m1:m]`` each ascend (the columns' order). ``kind[c]`` is 1 for
    a set gene's column, 0 for another column, 2 for a member of a duplicated group still to
    be merged (``mg``: see :func:`segment_sums_csr`); ``qpos[c]`` is a set gene's universe
    position. ``uq``/``ugt``/``ueq`` are scratch (universe-sized, like the query arrays), so
    a row allocates nothing. Cost O(nnz * u) for ``u <= _LINEAR_GRID`` distinct query
    values (vectorised compares), else O(nnz log u), plus sorting the ``m`` queries.

    A row with group members is counted as the merged row (see :mod:`..genes.merge_jit`):
    its members' values are reduced per group as :func:`merge_csr` does; a non-zero group
    value is a query when its column is a set gene; the raw row's counts are then corrected
    by taking out every stored member value and adding every non-zero group value.
    """
    target, size, op, gpos, sc, mv = mg
    acc, seen, present, vals = sc[0], sc[1], sc[2], sc[3]
    nnz = hi - lo
    m = 0
    nm = 0  # stored group members of the row
    n = 0  # groups with a stored member
    if target.size == 0:  # no groups: the plain loop (kind is 0 or 1)
        for k in range(lo, hi):
            c = indices[k]
            if kind[c]:  # one byte per column: stays in L1 cache while the rows stream by
                x = data[k]
                if x != 0.0:
                    qp[m] = qpos[c]
                    qv[m] = x
                    m += 1
    else:  # the same, plus the group members (kind 2) reduced as merge_csr does
        for k in range(lo, hi):
            c = indices[k]
            kd = kind[c]
            if kd == 1:
                x = data[k]
                if x != 0.0:
                    qp[m] = qpos[c]
                    qv[m] = x
                    m += 1
            elif kd == 2:
                x = data[k]
                mv[nm] = x
                nm += 1
                n = accumulate_member(acc, seen, present, n, -1 - target[c], x, r)
    m1 = m
    q = 0  # non-zero groups (an all-zero group stays implicit, as in the merged row)
    if n:
        sort_present(present, n)  # by slot = by output column, as the merged row holds them
        for i in range(n):
            v = group_value(acc, present[i], size, op)
            if v != 0.0:
                vals[q] = v  # rounded to the block's type, as merge_csr stores it
                p = gpos[present[i]]
                if p >= 0:
                    qp[m] = p
                    qv[m] = vals[q]
                    m += 1
                q += 1
    n_implicit = n_genes - (nnz - nm + q)
    # the sorted distinct query values uq[:u]
    if m <= _INSERTION_SORT:
        for t in range(m):
            v = qv[t]
            s = t
            while s > 0 and uq[s - 1] > v:
                uq[s] = uq[s - 1]
                s -= 1
            uq[s] = v
    else:
        uq[:m] = np.sort(qv[:m])
    u = 0
    for t in range(m):
        if u == 0 or uq[t] != uq[u - 1]:
            uq[u] = uq[t]
            u += 1
    row = data[lo:hi]
    out = mv[:nm]  # taken out of the raw row's counts
    into = vals[:q]  # put in
    # branch-free counts (the np.int64 casts keep LLVM's loops vectorised)
    n_pos = np.int64(0)
    n_zero_stored = np.int64(0)
    for k in range(nnz):
        n_pos += np.int64(row[k] > 0.0)
        n_zero_stored += np.int64(row[k] == 0.0)
    fix = nm > 0 or q > 0
    for k in range(nm):
        n_pos -= np.int64(out[k] > 0.0)
        n_zero_stored -= np.int64(out[k] == 0.0)
    for k in range(q):
        n_pos += np.int64(into[k] > 0.0)  # group values are non-zero
    if u <= _LINEAR_GRID:
        for j in range(u):
            v = uq[j]
            g = np.int64(0)
            e = np.int64(0)
            for k in range(nnz):
                g += np.int64(row[k] > v)
                e += np.int64(row[k] == v)
            if fix:
                for k in range(nm):
                    g -= np.int64(out[k] > v)
                    e -= np.int64(out[k] == v)
                for k in range(q):
                    g += np.int64(into[k] > v)
                    e += np.int64(into[k] == v)
            ugt[j] = g
            ueq[j] = e
    else:
        # histogram of the stored values on the grid: ueq = at a grid point, ugt[j] = strictly
        # between uq[j-1] and uq[j] (turned into "greater than uq[j]" by a suffix sum below)
        ugt[: u + 1] = 0
        ueq[:u] = 0
        for k in range(nnz):
            _bin(uq, u, row[k], ugt, ueq, 1)
        for k in range(nm):
            _bin(uq, u, out[k], ugt, ueq, -1)
        for k in range(q):
            _bin(uq, u, into[k], ugt, ueq, 1)
        above = ugt[u]
        for j in range(u - 1, -1, -1):
            between = ugt[j]
            ugt[j] = above
            above += between + ueq[j]
    for t in range(m):
        j = _count_less(uq[:u], qv[t])
        g = ugt[j]
        if qv[t] < 0.0:
            g += n_implicit  # the implicit zeros rank above a negative value
        qg[t] = g
        qe[t] = ueq[j]
    return m, m1, n_pos, n_implicit + n_zero_stored


@njit(cache=True, inline="always")
def _bin(uq: np.ndarray, u: int, x: float, between: np.ndarray, at: np.ndarray, w: int) -> None:
    """Add ``w`` to the grid bin of ``x``: ``at[j]`` if ``x == uq[j]``, else ``between[j]``
    (``x`` strictly between ``uq[j-1]`` and ``uq[j]``)."""
    j = _count_less(uq[:u], x)
    if j < u and uq[j] == x:
        at[j] += w
    else:
        between[j] += w


@njit(cache=True, parallel=True)
def tie_counts_csr(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    n_genes: int,
    upos: np.ndarray,
    n_univ: int,
    univ_cols: np.ndarray,
    ordinal: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``greater``, ``equal`` (and ``before`` if ``ordinal``) counts, rows × universe genes."""
    n_rows = indptr.size - 1
    greater = np.empty((n_rows, n_univ), dtype=np.int64)
    equal = np.empty((n_rows, n_univ), dtype=np.int64)
    before = np.zeros((n_rows, n_univ if ordinal else 0), dtype=np.int64)
    for i in prange(n_rows):
        _row_tie_counts(
            data,
            indices,
            indptr[i],
            indptr[i + 1],
            n_genes,
            upos,
            greater[i],
            equal[i],
            univ_cols,
            before[i],
        )
    return greater, equal, before


@njit(cache=True)
def _transform(g: float, e: float, n_genes: int, mode: int, cap: float) -> float:
    if mode == UCELL:
        r = g + (e + 1.0) / 2.0
        return cap + 1.0 if r > cap else r
    if mode in (AUCELL, AUCELL_ORDINAL):
        a = g + 1.0  # the tie group holds descending ranks a..b, each equally likely
        b = g + e
        if a >= cap:
            return 0.0
        top = min(b, cap - 1.0)
        c = top - a + 1.0
        return (c * cap - (a + top) * c / 2.0) / e
    if mode == ASC_AVERAGE:
        return n_genes + 1.0 - (g + (e + 1.0) / 2.0)
    return n_genes - g - e + 1.0


@njit(cache=True, parallel=True)
def segment_sums_csr(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    n_genes: int,
    upos: np.ndarray,
    n_univ: int,
    seg_ptr: np.ndarray,
    seg_members: np.ndarray,
    gene_seg_ptr: np.ndarray,
    gene_segs: np.ndarray,
    mode: int,
    cap: float,
    univ_cols: np.ndarray,
    kind: np.ndarray,
    qpos: np.ndarray,
    target: np.ndarray,
    group_code: np.ndarray,
    group_size: np.ndarray,
    op: int,
    gpos: np.ndarray,
    n_members: int,
) -> np.ndarray:
    """For each row and segment, the sum over the segment's genes of ``_transform``.

    Set genes that are zero in a row share one transformed value ``z``, so a segment's sum
    is ``size * z`` plus, for each of its genes that is non-zero in the row, the difference
    from ``z`` (found through the gene -> segments index ``gene_seg_ptr``/``gene_segs``).
    Ordinal ties give every zero gene its own rank and take the per-gene path.

    Rows whose duplicated columns are still to be merged (:class:`UnmergedRows`; not for
    the ordinal mode) are scored as the merged rows, bit for bit, without writing them:
    ``kind``/``qpos`` are per raw column (:func:`_row_query_counts`), ``target``,
    ``group_code``, ``group_size``, ``op`` the merge plan, ``gpos`` each group's universe
    position (-1 if not a set gene), ``n_members`` its member count. Otherwise ``kind`` is
    ``upos >= 0`` (int8), ``qpos`` is ``upos`` and there are no groups.
    """
    n_rows = indptr.size - 1
    n_seg = seg_ptr.size - 1
    out = np.zeros((n_rows, n_seg), dtype=np.float64)
    if mode == AUCELL_ORDINAL:
        # ties broken by column order: every zero gene has its own rank, so each universe
        # gene takes the per-gene path
        for i in prange(n_rows):
            greater = np.empty(n_univ, dtype=np.int64)
            equal = np.empty(n_univ, dtype=np.int64)
            before = np.zeros(n_univ, dtype=np.int64)
            _row_tie_counts(
                data, indices, indptr[i], indptr[i + 1], n_genes, upos, greater, equal,
                univ_cols, before,
            )  # fmt: skip
            val = np.empty(n_univ, dtype=np.float64)
            for p in range(n_univ):
                val[p] = _transform(greater[p] + before[p], 1.0, n_genes, AUCELL, cap)
            for s in range(n_seg):
                acc = 0.0
                for t in range(seg_ptr[s], seg_ptr[s + 1]):
                    acc += val[seg_members[t]]
                out[i, s] = acc
        return out
    # rows in chunks, each with its own scratch: no allocation per row
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    for c in prange(n_chunks):
        qp = np.empty(n_univ, dtype=np.int64)
        qv = np.empty(n_univ, dtype=data.dtype)
        qg = np.empty(n_univ, dtype=np.int64)
        qe = np.empty(n_univ, dtype=np.int64)
        uq = np.empty(n_univ, dtype=data.dtype)
        ugt = np.empty(n_univ + 1, dtype=np.int64)
        ueq = np.empty(n_univ, dtype=np.int64)
        mg = (
            target, group_size, op, gpos,
            group_scratch(max(group_code.size, 1), data.dtype, indices.dtype),
            np.empty(max(n_members, 1), dtype=data.dtype),
        )  # fmt: skip
        for i in range(c * _ROWS_PER_CHUNK, min(n_rows, (c + 1) * _ROWS_PER_CHUNK)):
            m, m1, zg, ze = _row_query_counts(
                data, indices, indptr[i], indptr[i + 1], n_genes, qpos, kind, qp, qv, qg, qe, uq,
                ugt, ueq, i, mg,
            )  # fmt: skip
            # a row without zeros (all values stored, non-zero) has no zero block to rank
            z = _transform(zg, ze, n_genes, mode, cap) if ze > 0 else 0.0
            for s in range(n_seg):
                out[i, s] = (seg_ptr[s + 1] - seg_ptr[s]) * z
            # the queries in column order (= universe order), as the merged row holds
            # them: singles qp[:m1] and groups qp[m1:m], each ascending, merged, so that
            # every segment adds its deltas in the same order
            a = 0
            b = m1
            for k in range(m):
                t = k
                if m1 < m:  # groups among the queries: take the lower column next
                    if b >= m or (a < m1 and qp[a] < qp[b]):
                        t = a
                        a += 1
                    else:
                        t = b
                        b += 1
                delta = _transform(qg[t], qe[t], n_genes, mode, cap) - z
                p = qp[t]
                for r in range(gene_seg_ptr[p], gene_seg_ptr[p + 1]):
                    out[i, gene_segs[r]] += delta
    return out


@njit(cache=True)
def csr_scan(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> tuple[int, bool]:
    """Position of the first non-finite stored value (-1 if none) and whether every row's
    column indices strictly increase (sorted, no duplicates): one vectorised pass, serial
    (about 1 ns per value, less than a parallel region costs to start on a busy machine)."""
    n_rows = indptr.size - 1
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    first_bad = np.full(n_chunks, -1, dtype=np.int64)
    n_unsorted = np.zeros(n_chunks, dtype=np.int64)
    for c in range(n_chunks):
        for i in range(c * _ROWS_PER_CHUNK, min(n_rows, (c + 1) * _ROWS_PER_CHUNK)):
            lo = indptr[i]
            hi = indptr[i + 1]
            row = data[lo:hi]
            cols = indices[lo:hi]
            # branch-free counts (np.int64 casts keep them vectorised)
            n_bad = np.int64(0)
            for k in range(row.size):
                n_bad += np.int64(row[k] - row[k] != 0.0)  # NaN or infinite
            if n_bad and first_bad[c] < 0:
                for k in range(row.size):
                    if row[k] - row[k] != 0.0:
                        first_bad[c] = lo + k
                        break
            unsorted = np.int64(0)
            for k in range(1, cols.size):
                unsorted += np.int64(cols[k] <= cols[k - 1])
            n_unsorted[c] += unsorted
    bad = -1
    for c in range(n_chunks):
        if first_bad[c] >= 0:
            bad = first_bad[c]
            break
    return bad, n_unsorted.sum() == 0
