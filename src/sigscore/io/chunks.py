"""Row chunks sized by a memory budget: how many rows a scoring step reads at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import scipy.sparse as sp

#: Memory a row chunk may take while being scored (bytes), unless ``chunk_size`` is given.
DEFAULT_CHUNK_BYTES = 256 * 1024**2


def chunk_rows_for(X: Any, budget_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk so that a chunk, densified with a few working copies, fits the budget.

    Sparse input (CSR in memory or a sparse row source) is never densified by the rank
    kernels, so its rows are costed by their stored values rather than by the gene count.
    """
    n_obs, n_var = X.shape
    width = float(max(n_var, 1))
    if sp.issparse(X):
        width = max(X.nnz / max(n_obs, 1), 1.0)
    elif getattr(X, "sparse", False) and hasattr(X, "mean_row_nnz"):
        width = max(X.mean_row_nnz(), 1.0)
    # A rank method holds roughly four float64/int64 arrays the size of the chunk.
    row_bytes = 4 * 8 * width
    rows = int(max(1, min(n_obs, budget_bytes // row_bytes)))
    if not getattr(X, "lazy", False):
        # in memory: at most 1/8 of the rows per chunk, so the working arrays stay below the
        # input's own size (peak RSS above baseline ≤ input size, issue 15)
        rows = min(rows, max(1024, -(-n_obs // 8)))
    return rows


def iter_row_chunks(n_obs: int, chunk_rows: int) -> Iterator[slice]:
    for start in range(0, n_obs, chunk_rows):
        yield slice(start, min(n_obs, start + chunk_rows))
