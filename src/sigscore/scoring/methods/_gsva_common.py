"""Helpers shared by the GSVA-family methods (``ssgsea``, ``gsva``, ``zscore``, ``plage``).

* directional sets are expanded into plain gene lists ("parts"), scored, and recombined as
  ``score(up) - score(down)`` (``-score(down)`` when ``up`` is empty), never clipped;
* sparse matrices are only ever densified in row chunks or column blocks whose size is
  bounded by :data:`CHUNK_BYTES`;
* per-gene mean/sd over the observations, computed block by block in two passes (the
  1e-10 constant-gene threshold of GSVA needs an accurate sd, not ``E[x²] - E[x]²``);
* the standardised set columns that ``zscore`` and ``plage`` both start from.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._base import GeneStats, IndexedSet, Matrix

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
