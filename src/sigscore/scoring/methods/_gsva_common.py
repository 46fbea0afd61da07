"""Helpers shared by the GSVA-family methods (``ssgsea``, ``gsva``, ``zscore``, ``plage``).

* directional sets are expanded into plain gene lists ("parts"), scored, and recombined as
  ``score(up) - score(down)`` (``-score(down)`` when ``up`` is empty), never clipped;
* sparse matrices are only ever densified in row chunks or column blocks whose size is
  bounded by :data:`CHUNK_BYTES`;
* per-gene mean/sd over the observations, computed block by block in two passes (the
  1e-10 constant-gene threshold of GSVA needs an accurate sd, not ``E[x²] - E[x]²``);
* the standardised set columns that ``zscore`` and ``plage`` both start from;
* :func:`set_tie_counts`: where each set gene falls in its row's order of all genes (dense
  rows), the only ranks the closed-form ssGSEA score and the GSVA walk need.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ._base import GeneStats, IndexedSet, Matrix
from ._ranks import SetLayout

#: Bytes of float64 a single densified block may occupy (several temporaries live beside it).
CHUNK_BYTES = 64 * 1024 * 1024

#: GSVA 1.46 (``.filterFeatures``) treats genes with sd below this as constant.
CONSTANT_SD = 1e-10


@dataclass(frozen=True)
class Part:
    """One undirected gene list to score: column indices and optional weights."""

    genes: np.ndarray
    weights: np.ndarray | None = None


@dataclass(frozen=True)
class Plan:
    """How the scores of the parts combine into the score of each requested set."""

    parts: list[Part]
    up: np.ndarray  # per set: index into parts, or -1
    down: np.ndarray  # per set: index into parts, or -1


def expand_sets(sets: Sequence[IndexedSet]) -> Plan:
    """Split every set into its up part and (when present) its down part."""
    parts: list[Part] = []
    up = np.full(len(sets), -1, dtype=np.int64)
    down = np.full(len(sets), -1, dtype=np.int64)
    for i, s in enumerate(sets):
        if s.up.size:
            up[i] = len(parts)
            parts.append(Part(np.asarray(s.up, dtype=np.int64), s.up_weights))
        if s.down.size:
            down[i] = len(parts)
            parts.append(Part(np.asarray(s.down, dtype=np.int64), s.down_weights))
    return Plan(parts, up, down)


def combine(part_scores: np.ndarray, plan: Plan) -> np.ndarray:
    """(n_obs, n_parts) → (n_obs, n_sets): up − down; a set with neither part is NaN."""
    n_obs = part_scores.shape[0]
    out = np.full((n_obs, plan.up.size), np.nan)
    for i, (u, d) in enumerate(zip(plan.up, plan.down, strict=True)):
        if u >= 0 and d >= 0:
            out[:, i] = part_scores[:, u] - part_scores[:, d]
        elif u >= 0:
            out[:, i] = part_scores[:, u]
        elif d >= 0:
            out[:, i] = -part_scores[:, d]
    return out


def restrict_parts(plan: Plan, keep: np.ndarray) -> Plan:
    """Drop genes where ``keep`` is False from every part (weights follow their genes)."""
    parts = []
    for p in plan.parts:
        mask = keep[p.genes]
        w = None if p.weights is None else np.asarray(p.weights, dtype=float)[mask]
        parts.append(Part(p.genes[mask], w))
    return Plan(parts, plan.up, plan.down)


def rows_per_chunk(n_cols: int, copies: int = 8, budget: int = CHUNK_BYTES) -> int:
    """Rows of ``n_cols`` float64 that fit ``copies`` times in ``budget`` bytes (≥ 1)."""
    return max(1, budget // max(1, 8 * n_cols * copies))


def iter_row_chunks(n_rows: int, chunk: int) -> Iterator[slice]:
    for start in range(0, n_rows, chunk):
        yield slice(start, min(n_rows, start + chunk))


def dense_rows(X: Matrix, rows: slice) -> np.ndarray:
    """Rows of ``X`` as a dense float64 array (densifies only these rows)."""
    block = X[rows]
    if sp.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=np.float64)


def dense_columns(X: Matrix, cols: np.ndarray | slice) -> np.ndarray:
    """Columns of ``X`` (all rows) as a dense float64 array (densifies only these columns)."""
    block = X[:, cols]
    if sp.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=np.float64)


def matrix_bytes(X: Matrix) -> int:
    """Bytes ``X`` occupies (a sparse matrix: its stored values and indices)."""
    if sp.issparse(X):
        return sum(
            int(getattr(X, a).nbytes) for a in ("data", "indices", "indptr") if hasattr(X, a)
        )
    return int(np.asarray(X).nbytes)


def block_width(n_rows: int, budget: int, copies: int = 1) -> int:
    """Columns per dense float64 block of ``n_rows`` rows: ``copies`` blocks within
    ``budget`` bytes, and at least 16 columns (per-block costs stay small)."""
    return max(16, budget // max(1, 8 * n_rows * copies))


def column_blocks(X: Matrix, copies: int = 2) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (column slice, dense block) over all columns of ``X`` (:func:`block_width`).

    A CSR matrix is converted to CSC once (same number of stored values) so that column
    blocks are cheap to cut; it is never densified as a whole.
    """
    n_rows, n_cols = X.shape
    Xc = X.tocsc() if sp.issparse(X) else X
    # within 1/8 of the input, so that the caller's peak stays a fraction of it
    width = block_width(n_rows, min(CHUNK_BYTES, matrix_bytes(X) // 8), copies)
    start = 0
    while start < n_cols:
        # a short tail joins its block: numpy sums a one-column block pairwise, the others
        # row by row, so this keeps every column's mean/sd bits independent of the blocking
        stop = n_cols if n_cols - start < width + 16 else start + width
        cols = slice(start, stop)
        yield cols, dense_columns(Xc, cols)
        start = stop


def gene_mean_sd(X: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and sample sd (ddof = 1), two-pass within column blocks."""
    n_rows, n_cols = X.shape
    mean = np.empty(n_cols)
    sd = np.empty(n_cols)
    for cols, block in column_blocks(X):  # the block (or its float64 copy) and one temporary
        m = block.mean(axis=0)
        mean[cols] = m
        sd[cols] = np.sqrt(((block - m) ** 2).sum(axis=0) / (n_rows - 1)) if n_rows > 1 else np.nan
    return mean, sd


def standardize(values: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd`` column-wise (as R's ``scale``)."""
    return (values - mean) / sd


def set_columns_z(
    X: Matrix, plan_genes: np.ndarray, gene_stats: GeneStats | None
) -> tuple[np.ndarray, np.ndarray]:
    """z-scores of the union of set genes (obs × genes) and the mask of usable genes."""
    values = dense_columns(X, plan_genes)
    if gene_stats is not None:
        mean = np.asarray(gene_stats.mean, dtype=float)[plan_genes]
        sd = np.asarray(gene_stats.sd, dtype=float)[plan_genes]
    else:
        n = values.shape[0]
        mean = values.mean(axis=0)
        sd = (
            np.sqrt(((values - mean) ** 2).sum(axis=0) / (n - 1))
            if n > 1
            else np.full(values.shape[1], np.nan)
        )
    usable = np.isfinite(sd) & (sd >= CONSTANT_SD)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = standardize(values, mean, sd)
    return z, usable


def standardized_parts(
    X: Matrix, sets: Sequence[IndexedSet], gene_stats: GeneStats | None
) -> tuple[np.ndarray, Plan, np.ndarray]:
    """z-scores of the sets' genes, the plan of parts without the constant genes, and the
    map from a gene's column in ``X`` to its column in the z matrix (``-1``: not in a set).

    Constant genes (sd < :data:`CONSTANT_SD`) are dropped from their parts, as GSVA does.
    """
    plan = expand_sets(sets)
    genes = np.unique(np.concatenate([p.genes for p in plan.parts] or [np.zeros(0, np.int64)]))
    z, usable = set_columns_z(X, genes, gene_stats)
    keep = np.zeros(X.shape[1], dtype=bool)
    keep[genes[usable]] = True
    col = np.full(X.shape[1], -1, dtype=np.int64)
    col[genes] = np.arange(genes.size)
    return z, restrict_parts(plan, keep), col


#: Buckets per set value in :func:`_set_tie_counts`' uniform grid: most row values land in a
#: bucket holding no set value, so placing one is a multiply and two loads (4 per value:
#: 36 ms of CPU for 200 × 15k with 500 set genes, 16: 23 ms, 32-64: 21-22 ms), capped so
#: that a row's bucket starts (int32) stay within 256 KB.
_BUCKETS_PER_VALUE = 16
_MAX_BUCKETS = 1 << 16


@njit(cache=True)
def _fill_grid(sv, start):  # pragma: no cover
    """The bucket grid of a row's sorted set values ``sv`` into the zeroed ``start``
    (``nb + 2`` buckets' starts); returns ``(lo_v, hi_v, scale)``.

    The grid spans the finite set values (±inf, GSVA log-odds, go around it);
    ``start[b]`` = fl + #{finite set values in buckets < b}."""
    u = sv.size
    nb = start.size - 2
    fl = 0
    while fl < u and sv[fl] == -np.inf:
        fl += 1
    fh = u - 1
    while fh >= fl and sv[fh] == np.inf:
        fh -= 1
    lo_v = sv[fl] if fl <= fh else np.inf
    hi_v = sv[fh] if fl <= fh else -np.inf
    scale = nb / (hi_v - lo_v) if hi_v > lo_v else 0.0
    start[0] = fl
    for i in range(fl, fh + 1):
        start[int((sv[i] - lo_v) * scale) + 1] += 1
    for b in range(1, nb + 2):
        start[b] += start[b - 1]
    return lo_v, hi_v, scale


@njit(cache=True)
def _place_row(row, upos, sv, start, grid, ordinal, lt, le, seen, before):  # pragma: no cover
    """Place each value of ``row`` among the sorted set values ``sv``: ``lt[i]`` / ``le[i]``
    count the values with exactly ``i`` set values below / at or below them; with
    ``ordinal``, ``before[p]`` = equal values in earlier columns for the set gene at column
    ``c`` (``p = upos[c] >= 0``), ``seen`` counting per group of equal set values.
    ``start``, ``grid``: :func:`_fill_grid`'s."""
    lo_v, hi_v, scale = grid
    for c in range(row.size):
        x = row[c]
        if lo_v <= x <= hi_v:
            b = int((x - lo_v) * scale)
            lo = start[b]
            e = start[b + 1]
            while lo < e and sv[lo] < x:
                lo += 1
            hi = lo
            while hi < e and sv[hi] <= x:
                hi += 1
        else:  # outside the set values' finite range (few values): binary search
            lo = np.searchsorted(sv, x, side="left")
            hi = np.searchsorted(sv, x, side="right")
        lt[lo] += 1
        le[hi] += 1
        if ordinal and hi > lo:
            p = upos[c]
            if p >= 0:
                before[p] = seen[lo]
            seen[lo] += 1


@njit(cache=True)
def _finish_row(order, lt, le, greater, equal):  # pragma: no cover
    """greater than ``sv[i]``: values whose lt-bin is above ``i``; at least ``sv[i]``: those
    whose le-bin is; written at the set gene's own position ``order[i]``."""
    gt_acc = 0
    ge_acc = 0
    for i in range(order.size - 1, -1, -1):
        gt_acc += lt[i + 1]
        ge_acc += le[i + 1]
        g = order[i]
        greater[g] = gt_acc
        equal[g] = ge_acc - gt_acc


@njit(parallel=True, cache=True)
def _set_tie_counts(X, genes, upos, ordinal, greater, equal, before):  # pragma: no cover
    """Per row of dense ``X``: for each set gene (``genes``), how many of the row's values
    are greater than its value and how many equal it (itself included); with ``ordinal``
    also how many columns before it hold its value (``before``, R's stable order).

    The row's set values are sorted once; each of the row's ``n`` values is then placed
    among them through a uniform grid of buckets over their range. The bucket function
    ``f(x) = int((x - min) * scale)`` is monotone, so set values in lower buckets are below
    ``x`` and those in higher ones above it: only the set values of ``x``'s own bucket are
    compared. O(n + u log u) per row instead of O(n log u) (binary search) or O(n log n).
    """
    n_rows = X.shape[0]
    u = genes.size
    nb = min(_BUCKETS_PER_VALUE * u, _MAX_BUCKETS)
    for r in prange(n_rows):
        vals = np.empty(u)
        for i in range(u):
            vals[i] = X[r, genes[i]]
        order = np.argsort(vals)
        sv = np.empty(u)
        for i in range(u):
            sv[i] = vals[order[i]]
        lt = np.zeros(u + 1, np.int64)
        le = np.zeros(u + 1, np.int64)
        seen = np.zeros(u + 1, np.int64)
        start = np.zeros(nb + 2, np.int32)
        grid = _fill_grid(sv, start)
        _place_row(X[r], upos, sv, start, grid, ordinal, lt, le, seen, before[r])
        _finish_row(order, lt, le, greater[r], equal[r])


@njit(parallel=True, cache=True)
def _tie_prepare(S, order, start, grid):  # pragma: no cover
    """Sort each row of ``S`` in place (``order[r]``: the permutation that did it) and fill
    its bucket grid (``start[r]``, zeroed; ``grid[r]`` = lo, hi, scale)."""
    for r in prange(S.shape[0]):
        o = np.argsort(S[r])
        tmp = S[r][o]
        for i in range(o.size):
            S[r, i] = tmp[i]
            order[r, i] = o[i]
        grid[r, 0], grid[r, 1], grid[r, 2] = _fill_grid(S[r], start[r])


@njit(parallel=True, cache=True)
def _tie_add(
    B, bupos, sv, order, start, grid, ordinal, fill, lt, le, seen, before
):  # pragma: no cover
    u = sv.shape[1]
    for r in prange(B.shape[0]):
        if fill:  # the set genes' columns of B take their (sorted-away) values
            inv = np.empty(u, np.int64)
            for i in range(u):
                inv[order[r, i]] = i
            for c in range(B.shape[1]):
                if bupos[c] >= 0:
                    B[r, c] = sv[r, inv[bupos[c]]]
        g = (grid[r, 0], grid[r, 1], grid[r, 2])
        _place_row(B[r], bupos, sv[r], start[r], g, ordinal, lt[r], le[r], seen[r], before[r])


@njit(parallel=True, cache=True)
def _tie_finish(order, lt, le):  # pragma: no cover
    u = order.shape[1]
    for r in prange(order.shape[0]):
        greater = np.empty(u, lt.dtype)
        equal = np.empty(u, le.dtype)
        _finish_row(order[r], lt[r], le[r], greater, equal)
        lt[r, :u] = greater
        le[r, :u] = equal


class SetTieCounter:
    """:func:`set_tie_counts` over column blocks, for a matrix that is never whole in memory
    (GSVA's log-odds, computed gene block by gene block).

    ``set_values`` (rows × the layout's genes, in that order; taken over and sorted in
    place) must be the values the blocks hold at those genes, bit for bit (or the blocks
    leave them to the counter: ``add(..., fill=True)``). Blocks may come
    in any order, except with ``ordinal`` (then by increasing column). State: 20 bytes per
    row and set gene (28 ordinal) (int32 counts) and each row's bucket grid (kept, so that it is not
    rebuilt per block; ``grid_bytes`` for all rows, fewer buckets per set value where that
    is too little), instead of the whole matrix.
    """

    def __init__(
        self,
        set_values: np.ndarray,
        layout: SetLayout,
        *,
        ordinal: bool = False,
        grid_bytes: int = CHUNK_BYTES // 4,
    ):
        n_rows, u = set_values.shape
        self.layout = layout
        self.ordinal = ordinal
        nb = min(_BUCKETS_PER_VALUE * u, _MAX_BUCKETS, grid_bytes // max(1, 4 * n_rows))
        self.sv = np.ascontiguousarray(set_values, dtype=np.float64)
        self.order = np.empty((n_rows, u), dtype=np.int32)
        self.start = np.zeros((n_rows, max(nb, 1) + 2), dtype=np.int32)
        self.grid = np.zeros((n_rows, 3))
        if u and n_rows:
            _tie_prepare(self.sv, self.order, self.start, self.grid)
        self.lt = np.zeros((n_rows, u + 1), dtype=np.int32)
        self.le = np.zeros((n_rows, u + 1), dtype=np.int32)
        shape = (n_rows, u + 1) if ordinal else (n_rows, 1)  # only ordinal counts use them
        self.seen = np.zeros(shape, dtype=np.int32)
        self.before = np.zeros(shape, dtype=np.int32)

    def add(self, block: np.ndarray, cols: np.ndarray, *, fill: bool = False) -> None:
        """Count the rows × ``cols`` block (``cols``: the layout's column indices). With
        ``fill``, the block's set-gene columns are not read but written first, with the
        values the counter was given (so they need not be computed twice)."""
        if self.sv.shape[1] and block.shape[0]:
            bupos = np.ascontiguousarray(self.layout.upos[cols])
            state = (self.lt, self.le, self.seen, self.before)
            grid = (self.sv, self.order, self.start, self.grid)
            _tie_add(block, bupos, *grid, self.ordinal, fill, *state)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(greater, equal, before)`` as :func:`set_tie_counts` gives them (int32)."""
        u = self.sv.shape[1]
        if u and self.sv.shape[0]:
            _tie_finish(self.order, self.lt, self.le)
        before = self.before[:, :u] if self.ordinal else np.zeros((self.sv.shape[0], u), np.int32)
        return self.lt[:, :u], self.le[:, :u], before


def set_tie_counts(
    X: np.ndarray, layout: SetLayout, *, ordinal: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(greater, equal, before)``, rows of dense ``X`` (float32 or float64, read in place)
    × the layout's genes: values greater than the gene's, values equal to it (itself
    included) and, only when ``ordinal``, equal values in earlier columns. The gene's tie
    block holds the descending positions ``greater .. greater + equal - 1`` (0-based)."""
    shape = (X.shape[0], layout.size)
    greater = np.zeros(shape, dtype=np.int64)
    equal = np.zeros(shape, dtype=np.int64)
    before = np.zeros(shape, dtype=np.int64)
    if layout.size and X.shape[0]:
        _set_tie_counts(X, layout.genes, layout.upos, ordinal, greater, equal, before)
    return greater, equal, before
