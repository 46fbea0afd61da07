"""numba kernels behind :mod:`._ranks` (tie counts, rank-transform segment sums).

Kept apart so that importing the rank methods never imports numba: :mod:`._ranks` loads
this module on the first input large enough to need it (see ``_ranks.SMALL_CELLS``); the
algorithms are described there. Compiled with ``cache=True``, so the JIT cost (~1-3 s) is
paid once per machine, and run rows in parallel (``prange``) on the numba thread pool.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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


@njit(cache=True)
def _row_query_counts(
    data: np.ndarray,
    indices: np.ndarray,
    lo: int,
    hi: int,
    n_genes: int,
    upos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Like :func:`_row_tie_counts` but only for the row's non-zero set genes.

    Returns their universe positions, ``greater`` and ``equal``, and the shared answer
    ``(greater, equal)`` of every set gene that is zero in the row. Cost O(nnz log u + m log m)
    with no array of the universe's size, which keeps many large sets cheap.
    """
    nnz = hi - lo
    n_implicit = n_genes - nnz
    m = 0
    for k in range(lo, hi):
        if upos[indices[k]] >= 0 and data[k] != 0.0:
            m += 1
    qp = np.empty(m, dtype=np.int64)
    qv = np.empty(m, dtype=np.float64)
    m = 0
    for k in range(lo, hi):
        p = upos[indices[k]]
        if p >= 0 and data[k] != 0.0:
            qp[m] = p
            qv[m] = data[k]
            m += 1
    uq = np.unique(qv)
    u = uq.size
    between = np.zeros(u + 1, dtype=np.int64)
    at = np.zeros(u, dtype=np.int64)
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
            at[j] += 1
        else:
            between[j] += 1
    n_le = np.empty(u, dtype=np.int64)
    acc = 0
    for j in range(u):
        acc += between[j] + at[j]
        n_le[j] = acc
    qg = np.empty(m, dtype=np.int64)
    qe = np.empty(m, dtype=np.int64)
    for t in range(m):
        j = _count_less(uq, qv[t])
        le = n_le[j]
        if qv[t] > 0.0:
            le += n_implicit
        qg[t] = n_genes - le
        qe[t] = at[j]
    return qp, qg, qe, n_pos, n_implicit + n_zero_stored


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
) -> np.ndarray:
    """For each row and segment, the sum over the segment's genes of ``_transform``.

    Set genes that are zero in a row share one transformed value ``z``, so a segment's sum
    is ``size * z`` plus, for each of its genes that is non-zero in the row, the difference
    from ``z`` (found through the gene -> segments index ``gene_seg_ptr``/``gene_segs``).
    Ordinal ties give every zero gene its own rank and take the per-gene path.
    """
    n_rows = indptr.size - 1
    n_seg = seg_ptr.size - 1
    out = np.zeros((n_rows, n_seg), dtype=np.float64)
    for i in prange(n_rows):
        if mode == AUCELL_ORDINAL:
            greater = np.empty(n_univ, dtype=np.int64)
            equal = np.empty(n_univ, dtype=np.int64)
            before = np.zeros(n_univ, dtype=np.int64)
            _row_tie_counts(
                data,
                indices,
                indptr[i],
                indptr[i + 1],
                n_genes,
                upos,
                greater,
                equal,
                univ_cols,
                before,
            )
            val = np.empty(n_univ, dtype=np.float64)
            for p in range(n_univ):
                val[p] = _transform(greater[p] + before[p], 1.0, n_genes, AUCELL, cap)
            for s in range(n_seg):
                acc = 0.0
                for t in range(seg_ptr[s], seg_ptr[s + 1]):
                    acc += val[seg_members[t]]
                out[i, s] = acc
        else:
            qp, qg, qe, zg, ze = _row_query_counts(
                data, indices, indptr[i], indptr[i + 1], n_genes, upos
            )
            z = _transform(zg, ze, n_genes, mode, cap)
            for s in range(n_seg):
                out[i, s] = (seg_ptr[s + 1] - seg_ptr[s]) * z
            for t in range(qp.size):
                delta = _transform(qg[t], qe[t], n_genes, mode, cap) - z
                p = qp[t]
                for r in range(gene_seg_ptr[p], gene_seg_ptr[p + 1]):
                    out[i, gene_segs[r]] += delta
    return out
