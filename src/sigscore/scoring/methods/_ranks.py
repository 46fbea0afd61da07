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

Two engines compute the counts. The numba kernels (:mod:`._rank_kernels`) cost
O(nnz log u + m log m) per row: the ``m`` non-zero set genes of the row are sorted (``u``
distinct values) and each stored value is binned into that grid by binary search, so the row
is never fully sorted; rows run in parallel. The rank-sum kernel behind AUCell, UCell and
singscore counts a grid of a few values (count data: ~4 per cell) with one branch-free,
vectorised pass over the row per value instead, reuses per-thread scratch rather than
allocating per row, and reads float32 values as they are (:func:`as_csr` keeps them).
Dense rows use the bucket grid GSVA and ssGSEA share (:func:`._gsva_common.set_tie_counts`),
O(n + u log u) per row. Importing numba and loading the cached kernels costs ~0.5 s per
process, more than a small input takes in numpy, so inputs of at most
:data:`SMALL_CELLS` cells (rows × genes) are counted with numpy instead (each dense row
sorted once, the set genes' values found by ``searchsorted``) unless the kernels are already
loaded. The counts are integers and every transform but AUCell's is a half-integer, so both
engines give bit-identical sums; AUCell's transform divides and always takes the kernels.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp

from sigscore.errors import InputError, UsageError
from sigscore.genes.merge_kernels import UnmergedRows

from ._base import IndexedSet

__all__ = [
    "SMALL_CELLS",
    "Engine",
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

# Per-gene transforms of (greater, equal) summed over set segments by :func:`segment_sums`.
UCELL = 0  # descending average rank, ranks > cap become cap + 1
AUCELL = 1  # expected (cap - rank)^+ with the tie group's order random
ASC_AVERAGE = 2  # ascending rank, ties averaged (rank 1 = lowest value)
ASC_MIN = 3  # ascending rank, ties get the minimum (R ``ties.method = "min"``)
AUCELL_ORDINAL = 4  # AUCELL with ties broken by column order (decoupler's convention)
_EXACT_MODES = (UCELL, ASC_AVERAGE, ASC_MIN)  # half-integer transforms: numpy sums are exact

#: Largest input (rows × genes) counted with numpy while the numba kernels are not loaded.
#: Measured (2-core machine, load ~9): numpy takes 10-30 ns per cell (10 × 20,000 genes in
#: 2 ms, 100 × 20,000 in 54 ms), the first numba call (import + loading the cached kernels)
#: 0.5-1.4 s. At this size numpy takes at most ~60 ms and a dense copy of 16 MB, so a small
#: file never pays the import and a large input loses little before the kernels take over.
SMALL_CELLS = 2_000_000
_KERNELS = "sigscore.scoring.methods._rank_kernels"
Engine = Literal["auto", "numpy", "numba"]


def as_csr(
    X: np.ndarray | sp.spmatrix | sp.sparray | UnmergedRows, *, unmerged_ok: bool = False
) -> sp.csr_matrix | UnmergedRows:
    """A CSR view of a row chunk in canonical form (sorted, no duplicate entries).

    Rows whose duplicated columns are still to be merged (:class:`UnmergedRows`) are
    merged, or with ``unmerged_ok`` (callers that hand them to :func:`segment_sums` only)
    returned as they are when their raw rows are float32/float64, finite and canonical:
    the kernel merges as it reads. Anything else takes the merged block, so errors and
    values are those of the merged matrix.

    float32 values stay float32: the kernels only compare values, and widening float32 to
    float64 is exact, so the counts (and every score) are the same; other dtypes become
    float64. A CSR input is used as it is (no re-wrapping, no copy) when already canonical.
    A dense chunk is converted row-block by row-block by the caller's chunking; converting
    it to CSR drops its zeros, which the kernels then treat exactly like implicit zeros, so
    dense and sparse inputs give identical results.
    """
    if isinstance(X, UnmergedRows):
        R = X.rows
        if unmerged_ok and type(R) is sp.csr_matrix and R.dtype in _RANK_DTYPES:
            bad, canonical = _scan(R)
            if bad < 0 and canonical:
                return X
        X = X.merged()
    if sp.issparse(X):
        M = X if type(X) is sp.csr_matrix else sp.csr_matrix(X)
        if M.dtype not in _RANK_DTYPES:
            M = M.astype(np.float64)
    else:
        arr = np.asarray(X)
        if arr.dtype not in _RANK_DTYPES:
            arr = arr.astype(np.float64)
        if arr.ndim != 2:
            raise InputError(
                f"expected a 2-D matrix (observations × genes), got an array of shape {arr.shape}"
            )
        M = sp.csr_matrix(arr)
    bad, canonical = _scan(M)
    if bad >= 0:
        row = int(np.searchsorted(M.indptr, bad, side="right") - 1)
        col = int(M.indices[bad])
        raise InputError(
            f"matrix contains NaN or infinite values (first at row {row}, column {col}); "
            "remove or impute them before scoring"
        )
    if not canonical:
        M = M.copy()
        M.sum_duplicates()
    return M


_RANK_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _scan(M: sp.csr_matrix) -> tuple[int, bool]:
    """``(position of the first non-finite stored value or -1, canonical format?)``.

    Large blocks take one parallel numba pass (the kernels will be needed for them anyway);
    small ones numpy, so that a short run does not import numba.
    """
    if M.nnz == 0:
        return -1, bool(M.has_canonical_format)
    if not _use_numpy(M.shape, "auto"):
        from ._rank_kernels import csr_scan

        bad, canonical = csr_scan(M.data, M.indices, M.indptr)
        return int(bad), bool(canonical)
    finite = np.isfinite(M.data)
    bad = -1 if finite.all() else int(np.flatnonzero(~finite)[0])
    return bad, bool(M.has_canonical_format)


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


def _use_numpy(shape: tuple[int, int], engine: Engine) -> bool:
    """Whether to count with numpy (see the module docstring for the rule)."""
    if engine not in ("auto", "numpy", "numba"):
        raise UsageError(f"engine must be 'auto', 'numpy' or 'numba', not {engine!r}")
    if engine != "auto":
        return engine == "numpy"
    return shape[0] * shape[1] <= SMALL_CELLS and _KERNELS not in sys.modules


def _dense_counts(
    X: np.ndarray, genes: np.ndarray, *, ordinal: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy ``(greater, equal, before)`` of the columns ``genes`` of dense rows ``X``.

    Each row is sorted once; ``searchsorted`` on it gives, per set gene, how many values are
    below it (left) and at most it (right). ``before`` (ties earlier in column order) comes
    from a stable sort of the negated row, i.e. ``rankdata(-row, "ordinal")``.
    """
    n_rows, n = X.shape
    shape = (n_rows, genes.size)
    greater = np.empty(shape, dtype=np.int64)
    equal = np.empty(shape, dtype=np.int64)
    before = np.zeros(shape if ordinal else (n_rows, 0), dtype=np.int64)
    for r in range(n_rows):
        row = np.asarray(X[r], dtype=np.float64)  # float32 -> float64 keeps order and ties
        srt = np.sort(row)
        q = row[genes]
        less = np.searchsorted(srt, q, side="left")
        le = np.searchsorted(srt, q, side="right")
        greater[r] = n - le
        equal[r] = le - less
        if ordinal:
            rank = np.empty(n, dtype=np.int64)
            rank[np.argsort(-row, kind="stable")] = np.arange(n, dtype=np.int64)
            before[r] = rank[genes] - greater[r]
    return greater, equal, before


def tie_counts(
    M: sp.csr_matrix, layout: SetLayout, *, engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """``(greater, equal)`` int64 arrays (rows of ``M`` × universe genes); see module docs."""
    greater, equal, _ = _counts(M, layout, ordinal=False, engine=engine)
    return greater, equal


def ordinal_ranks(M: sp.csr_matrix, layout: SetLayout, *, engine: Engine = "auto") -> np.ndarray:
    """Descending ranks with ties broken by column order (``rankdata(-row, "ordinal")``)."""
    greater, _, before = _counts(M, layout, ordinal=True, engine=engine)
    return greater + before + 1


def _counts(
    M: sp.csr_matrix, layout: SetLayout, *, ordinal: bool, engine: Engine
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    numpy = _use_numpy(M.shape, engine)
    if layout.size == 0 or M.shape[0] == 0:
        empty = np.zeros((M.shape[0], layout.size), dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    if numpy:
        return _dense_counts(M.toarray(), layout.genes, ordinal=ordinal)
    from ._rank_kernels import tie_counts_csr  # numba: imported on first use (slow)

    return tie_counts_csr(
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


def _transform(
    greater: np.ndarray, equal: np.ndarray, n_genes: int, mode: int, cap: float
) -> np.ndarray:
    """Array twin of the kernels' per-gene transform for the half-integer modes."""
    if mode == UCELL:
        r = greater + (equal + 1.0) / 2.0
        return np.where(r > cap, cap + 1.0, r)
    if mode == ASC_AVERAGE:
        return n_genes + 1.0 - (greater + (equal + 1.0) / 2.0)
    return (n_genes - greater - equal + 1).astype(np.float64)


def segment_sums(
    M: sp.csr_matrix | UnmergedRows,
    layout: SetLayout,
    mode: int,
    cap: float = 0.0,
    *,
    engine: Engine = "auto",
) -> np.ndarray:
    """Per row of ``M``, sums of a rank transform over each set part.

    Returns ``(n_rows, 2 * n_sets)``: columns ``0..n_sets-1`` are the up parts, the rest the
    down parts. ``mode`` is one of :data:`UCELL`, :data:`AUCELL`, :data:`ASC_AVERAGE`,
    :data:`ASC_MIN`, :data:`AUCELL_ORDINAL`; ``cap`` is UCell's ``max_rank`` or AUCell's ``n_up``.
    ``engine="numpy"`` applies to the half-integer modes only (AUCell's always use numba).
    :class:`UnmergedRows` (from :func:`as_csr`) give the sums of the merged rows, bit for bit.
    """
    segs = list(layout.up) + list(layout.down)
    if M.shape[0] == 0:
        return np.zeros((0, len(segs)))
    if isinstance(M, UnmergedRows) and (
        mode == AUCELL_ORDINAL
        or (mode in _EXACT_MODES and _use_numpy(M.shape, engine))
        or not _singles_ascend(M.plan.target)
    ):
        M = M.merged()  # the kernel's fix-up covers the expected-ties path only
    if mode in _EXACT_MODES and _use_numpy(M.shape, engine):
        greater, equal, _ = _counts(M, layout, ordinal=False, engine="numpy")
        vals = _transform(greater, equal, M.shape[1], mode, float(cap))
        out = np.zeros((M.shape[0], len(segs)))
        for j, seg in enumerate(segs):
            if len(seg):
                out[:, j] = vals[:, seg].sum(axis=1)
        return out
    seg_ptr = np.zeros(len(segs) + 1, dtype=np.int64)
    seg_ptr[1:] = np.cumsum([len(x) for x in segs])
    members = np.concatenate(segs).astype(np.int64) if segs else np.zeros(0, dtype=np.int64)
    # inverted index: universe gene -> the segments that contain it
    owner = np.repeat(np.arange(len(segs), dtype=np.int64), np.diff(seg_ptr))
    order = np.argsort(members, kind="stable")
    gene_segs = owner[order]
    gene_seg_ptr = np.zeros(layout.size + 1, dtype=np.int64)
    gene_seg_ptr[1:] = np.cumsum(np.bincount(members, minlength=layout.size))
    from ._rank_kernels import segment_sums_csr

    upos = layout.upos
    if isinstance(M, UnmergedRows):
        plan, R = M.plan, M.rows
        alone = plan.target >= 0
        qpos = np.full(plan.target.size, -1, dtype=np.int64)
        qpos[alone] = upos[plan.target[alone]]
        kind = (qpos >= 0).astype(np.int8)
        kind[plan.members] = 2
        groups = (plan.target, plan.group_code, plan.group_size, plan.op)
        gpos, n_members = upos[plan.group_code], int(plan.members.size)
    else:
        R, qpos, kind = M, upos, (upos >= 0).astype(np.int8)
        none = np.zeros(0, dtype=np.int64)
        groups, gpos, n_members = (none, none, np.zeros(0), 0), none, 0
    return segment_sums_csr(
        R.data,
        R.indices,
        R.indptr,
        M.shape[1],
        upos,
        layout.size,
        seg_ptr,
        members,
        gene_seg_ptr,
        gene_segs,
        mode,
        float(cap),
        layout.genes,
        kind,
        qpos,
        *groups,
        gpos,
        n_members,
    )


def _singles_ascend(target: np.ndarray) -> bool:
    """Whether the columns alone in their group keep their order when merged (output columns
    numbered in order of first appearance), so a raw row's set genes come in merged order."""
    alone = target[target >= 0]
    return bool(np.all(alone[1:] > alone[:-1]))


def tie_counts_dense(
    X: np.ndarray, layout: SetLayout, *, ordinal: bool = False, engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(greater, equal, before)`` for the rows of a dense array (float32 or float64, read
    in place); ``before`` (ties earlier in column order) is filled only when ``ordinal``."""
    shape = (X.shape[0], layout.size)
    if not (layout.size and X.shape[0]):
        zero = np.zeros(shape, dtype=np.int64)
        return zero, zero.copy(), zero.copy()
    if _use_numpy(X.shape, engine):
        greater, equal, before = _dense_counts(X, layout.genes, ordinal=ordinal)
        return greater, equal, before if ordinal else np.zeros(shape, dtype=np.int64)
    # the bucket-grid kernel GSVA and ssGSEA use (numba, imported on first use): one kernel
    # for dense rows, 4-6x less CPU than the binary search this module had
    from ._gsva_common import set_tie_counts

    return set_tie_counts(X, layout, ordinal=ordinal)
