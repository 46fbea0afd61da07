"""Shared rank kernels for the rank-based single-sample methods (singscore, AUCell, UCell).

All three need, for each observation (row) and each gene of the scored sets, where that gene
falls in the row's ordering of *all* genes. A single-cell row holds a few thousand non-zeros
out of ~20,000-40,000 genes, so we never materialise the zeros: for a gene with value ``v``
in a row we only need

* ``greater`` — how many genes of the row have a value strictly greater than ``v``;
* ``equal``   — how many genes (itself included) share the value ``v``.

Every tie convention follows from these two counts: the gene's tie group occupies the
descending ranks ``greater + 1 .. greater + equal`` (rank 1 = highest value), so

* average descending rank = ``greater + (equal + 1) / 2``;
* ascending "min" rank (R ``rank(ties.method="min")``) = ``n_genes - greater - equal + 1``;
* AUCell's expected recovery under random tie-breaking uses the whole interval.

Zeros that are not stored form one tie block whose counts are known in closed form
(``n_genes - nnz`` implicit zeros plus any stored zeros); negative values (e.g. scaled data)
rank below the zeros, so the kernel is exact for any real-valued row, dense or sparse.

Per row the cost is O(nnz log u + m log m): the ``m`` non-zero set genes of the row are
sorted (``u`` distinct values), and each stored value is binned into that grid by binary
search, so the row is never fully sorted. Set genes that are zero share one closed-form
answer.
The kernels are compiled with ``numba.njit(cache=True)`` so the JIT cost (~1-3 s) is paid
once per machine, and run rows in parallel (``prange``) on the numba thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from sigscore.errors import InputError

from ._base import IndexedSet

__all__ = [
    "SetLayout",
    "as_csr",
    "average_rank_desc",
    "ordinal_ranks",
    "row_blocks",
    "segment_sums",
    "set_layout",
    "tie_counts",
    "tie_counts_dense",
]


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
def _tie_counts_csr(
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


# Per-gene transforms of (greater, equal) summed over set segments by ``_segment_sums_csr``.
UCELL = 0  # descending average rank, ranks > cap become cap + 1
AUCELL = 1  # expected (cap - rank)^+ with the tie group's order random
ASC_AVERAGE = 2  # ascending rank, ties averaged (rank 1 = lowest value)
ASC_MIN = 3  # ascending rank, ties get the minimum (R ``ties.method = "min"``)
AUCELL_ORDINAL = 4  # AUCELL with ties broken by column order (decoupler's convention)


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
def _segment_sums_csr(
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


def as_csr(X: np.ndarray | sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """A float64 CSR view of a row chunk in canonical form (sorted, no duplicate entries).

    A dense chunk is converted row-block by row-block by the caller's chunking; converting
    it to CSR drops its zeros, which the kernels then treat exactly like implicit zeros, so
    dense and sparse inputs give identical results.
    """
    if sp.issparse(X):
        M = sp.csr_matrix(X, dtype=np.float64)
        if not M.has_canonical_format:
            M = M.copy()
            M.sum_duplicates()
    else:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2:
            raise InputError(
                f"expected a 2-D matrix (observations × genes), got an array of shape {arr.shape}"
            )
        M = sp.csr_matrix(arr)
    if M.nnz and not np.all(np.isfinite(M.data)):
        bad = int(np.flatnonzero(~np.isfinite(M.data))[0])
        row = int(np.searchsorted(M.indptr, bad, side="right") - 1)
        col = int(M.indices[bad])
        raise InputError(
            f"matrix contains NaN or infinite values (first at row {row}, column {col}); "
            "remove or impute them before scoring"
        )
    return M


def row_blocks(n_rows: int, n_cols: int, budget: int = 8_000_000) -> Iterator[slice]:
    """Row slices such that a (rows × ``n_cols``) work array holds at most ``budget`` cells."""
    step = max(64, budget // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


class SetLayout:
    """The union ("universe") of genes used by a list of sets, and each set's positions in it.

    ``up[j]`` / ``down[j]`` index the universe columns of set ``j``'s up / down genes.
    """

    def __init__(self, sets: Sequence[IndexedSet], n_genes: int) -> None:
        parts = [np.asarray(s.up, dtype=np.int64) for s in sets]
        parts += [np.asarray(s.down, dtype=np.int64) for s in sets]
        genes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if genes.size and (genes[0] < 0 or genes[-1] >= n_genes):
            raise InputError(
                f"gene set positions out of range for a matrix with {n_genes} genes "
                f"(got {genes[0]}..{genes[-1]}); the sets were resolved against another matrix"
            )
        self.genes = genes
        self.upos = np.full(n_genes, -1, dtype=np.int64)
        self.upos[genes] = np.arange(genes.size, dtype=np.int64)
        self.up = [self.upos[np.asarray(s.up, dtype=np.int64)] for s in sets]
        self.down = [self.upos[np.asarray(s.down, dtype=np.int64)] for s in sets]
        self.n_genes = n_genes

    @property
    def size(self) -> int:
        return int(self.genes.size)


def set_layout(sets: Sequence[IndexedSet], n_genes: int) -> SetLayout:
    """Build the :class:`SetLayout` of ``sets`` for a matrix with ``n_genes`` columns."""
    return SetLayout(sets, n_genes)


def tie_counts(M: sp.csr_matrix, layout: SetLayout) -> tuple[np.ndarray, np.ndarray]:
    """``(greater, equal)`` int64 arrays (rows of ``M`` × universe genes); see module docs."""
    greater, equal, _ = _counts(M, layout, ordinal=False)
    return greater, equal


def ordinal_ranks(M: sp.csr_matrix, layout: SetLayout) -> np.ndarray:
    """Descending ranks with ties broken by column order (``rankdata(-row, "ordinal")``)."""
    greater, _, before = _counts(M, layout, ordinal=True)
    return greater + before + 1


def _counts(
    M: sp.csr_matrix, layout: SetLayout, *, ordinal: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if layout.size == 0 or M.shape[0] == 0:
        empty = np.zeros((M.shape[0], layout.size), dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    return _tie_counts_csr(
        M.data,
        M.indices,
        M.indptr,
        M.shape[1],
        layout.upos,
        layout.size,
        layout.genes,
        ordinal,
    )


def average_rank_desc(greater: np.ndarray, equal: np.ndarray) -> np.ndarray:
    """Descending rank (1 = highest value) with ties given their average rank."""
    return greater + (equal + 1.0) / 2.0


def segment_sums(M: sp.csr_matrix, layout: SetLayout, mode: int, cap: float = 0.0) -> np.ndarray:
    """Per row of ``M``, sums of a rank transform over each set part.

    Returns ``(n_rows, 2 * n_sets)``: columns ``0..n_sets-1`` are the up parts, the rest the
    down parts. ``mode`` is one of :data:`UCELL`, :data:`AUCELL`, :data:`ASC_AVERAGE`,
    :data:`ASC_MIN`, :data:`AUCELL_ORDINAL`; ``cap`` is UCell's ``max_rank`` or AUCell's ``n_up``.
    """
    segs = list(layout.up) + list(layout.down)
    seg_ptr = np.zeros(len(segs) + 1, dtype=np.int64)
    seg_ptr[1:] = np.cumsum([len(x) for x in segs])
    members = np.concatenate(segs).astype(np.int64) if segs else np.zeros(0, dtype=np.int64)
    # inverted index: universe gene -> the segments that contain it
    owner = np.repeat(np.arange(len(segs), dtype=np.int64), np.diff(seg_ptr))
    order = np.argsort(members, kind="stable")
    gene_segs = owner[order]
    gene_seg_ptr = np.zeros(layout.size + 1, dtype=np.int64)
    gene_seg_ptr[1:] = np.cumsum(np.bincount(members, minlength=layout.size))
    if M.shape[0] == 0:
        return np.zeros((0, len(segs)))
    return _segment_sums_csr(
        M.data,
        M.indices,
        M.indptr,
        M.shape[1],
        layout.upos,
        layout.size,
        seg_ptr,
        members,
        gene_seg_ptr,
        gene_segs,
        mode,
        float(cap),
        layout.genes,
    )


@njit(cache=True, inline="always")
def _bins_pow2(a: np.ndarray, size: int, v: float) -> tuple[int, int]:
    """Counts of ``a[:size]`` (ascending, ``size`` a power of two, last entry +inf) that are
    ``< v`` and ``<= v``: two interleaved branch-free binary searches (no mispredictions)."""
    lt = 0
    le = 0
    step = size >> 1
    while step > 0:
        lt += step * (a[lt + step - 1] < v)
        le += step * (a[le + step - 1] <= v)
        step >>= 1
    return lt, le


@njit(cache=True, parallel=True)
def _tie_counts_dense(X, genes, upos, ordinal, greater, equal, before):
    """Dense-row twin of :func:`_tie_counts_csr`: per row, the set genes' values are sorted
    once and every value of the row is binned into them by binary search (no row sort)."""
    n_rows, n = X.shape
    u = genes.size
    size = 2
    while size < u + 1:
        size *= 2
    for r in prange(n_rows):
        vals = np.empty(u)
        for i in range(u):
            vals[i] = X[r, genes[i]]
        order = np.argsort(vals)
        sv = np.full(size, np.inf)
        for i in range(u):
            sv[i] = vals[order[i]]
        lt = np.zeros(u + 1, np.int64)
        le = np.zeros(u + 1, np.int64)
        seen = np.zeros(u + 1, np.int64)  # per group of equal set values: columns passed
        for c in range(n):
            x = X[r, c]
            lo, hi = _bins_pow2(sv, size, x)
            lt[lo] += 1
            le[hi] += 1
            if ordinal and hi > lo:
                p = upos[c]
                if p >= 0:
                    before[r, p] = seen[lo]
                seen[lo] += 1
        # greater(sv[i]) = #{x : lt-bin > i}; #{x >= sv[i]} = #{x : le-bin > i}
        gt_acc = 0
        ge_acc = 0
        i = u - 1
        while i >= 0:
            gt_acc += lt[i + 1]
            ge_acc += le[i + 1]
            g = order[i]
            greater[r, g] = gt_acc
            equal[r, g] = ge_acc - gt_acc
            i -= 1


def tie_counts_dense(
    X: np.ndarray, layout: SetLayout, *, ordinal: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(greater, equal, before)`` for the rows of a dense array (float32 or float64, read
    in place); ``before`` (ties earlier in column order) is filled only when ``ordinal``."""
    shape = (X.shape[0], layout.size)
    greater = np.zeros(shape, dtype=np.int64)
    equal = np.zeros(shape, dtype=np.int64)
    before = np.zeros(shape, dtype=np.int64)
    if layout.size and X.shape[0]:
        _tie_counts_dense(X, layout.genes, layout.upos, ordinal, greater, equal, before)
    return greater, equal, before
