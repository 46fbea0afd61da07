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


def column_blocks(X: Matrix, copies: int = 4) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (column slice, dense block) over all columns of ``X`` within the memory budget.

    A CSR matrix is converted to CSC once (same number of stored values) so that column
    blocks are cheap to cut; it is never densified as a whole.
    """
    n_rows, n_cols = X.shape
    Xc = X.tocsc() if sp.issparse(X) else X
    width = max(1, CHUNK_BYTES // max(1, 8 * n_rows * copies))
    for start in range(0, n_cols, width):
        cols = slice(start, min(n_cols, start + width))
        yield cols, dense_columns(Xc, cols)


def gene_mean_sd(X: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and sample sd (ddof = 1), two-pass within column blocks."""
    n_rows, n_cols = X.shape
    mean = np.empty(n_cols)
    sd = np.empty(n_cols)
    for cols, block in column_blocks(X):
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
    n_rows, n = X.shape
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
        fl = 0  # the grid spans the finite set values; ±inf (GSVA log-odds) go around it
        while fl < u and sv[fl] == -np.inf:
            fl += 1
        fh = u - 1
        while fh >= fl and sv[fh] == np.inf:
            fh -= 1
        lo_v = sv[fl] if fl <= fh else np.inf
        hi_v = sv[fh] if fl <= fh else -np.inf
        scale = nb / (hi_v - lo_v) if hi_v > lo_v else 0.0
        start = np.zeros(nb + 2, np.int32)  # start[b] = fl + #{finite set values in buckets < b}
        start[0] = fl
        for i in range(fl, fh + 1):
            start[int((sv[i] - lo_v) * scale) + 1] += 1
        for b in range(1, nb + 2):
            start[b] += start[b - 1]
        lt = np.zeros(u + 1, np.int64)  # lt[i]: row values with exactly i set values below
        le = np.zeros(u + 1, np.int64)  # le[i]: ... with exactly i set values at or below
        seen = np.zeros(u + 1, np.int64)  # per group of equal set values: columns passed
        for c in range(n):
            x = X[r, c]
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
                    before[r, p] = seen[lo]
                seen[lo] += 1
        # greater than sv[i]: values whose lt-bin is above i; at least sv[i]: le-bin above i
        gt_acc = 0
        ge_acc = 0
        for i in range(u - 1, -1, -1):
            gt_acc += lt[i + 1]
            ge_acc += le[i + 1]
            g = order[i]
            greater[r, g] = gt_acc
            equal[r, g] = ge_acc - gt_acc


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
