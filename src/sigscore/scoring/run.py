"""Run one method over a matrix: in memory, or row block by row block from any row source."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from functools import partial
from numbers import Integral
from typing import Any

import numpy as np

from ..errors import UsageError
from ..io.blocks import float32_kept, merge_deferred
from ..io.chunks import chunk_rows_for
from ..io.sources import MergedSource, RowSource, as_source, is_lazy
from .methods import GeneStats, IndexedSet, MethodSpec


def gene_stats(X: Any, chunk_rows: int | None = None) -> GeneStats:
    """Per-gene mean and sample variance over all rows, accumulated chunk by chunk.

    ``X`` may be in memory or any :mod:`sigscore.io.sources` row source (backed h5ad, zarr,
    Dask); the pass streams row blocks and, under a Dask client, runs them on its workers.
    """
    src = as_source(X)
    n_obs = src.shape[0]
    total, total_sq = src.column_sums(chunk_rows or chunk_rows_for(src))
    mean = total / n_obs
    var = (total_sq - n_obs * mean**2) / max(n_obs - 1, 1)
    return GeneStats(mean=mean, var=np.clip(var, 0.0, None), n_obs=n_obs)


def _progress(enabled: bool | None, total: int, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty() and total > 1
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", leave=False)


def run_method(
    X: Any,
    sets: list[IndexedSet],
    spec: MethodSpec,
    params: Mapping[str, Any],
    *,
    stats: GeneStats | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run ``spec`` over ``X`` (rowwise methods in row chunks) and apply its ``finalize``.

    ``X`` is an in-memory matrix or a :mod:`sigscore.io.sources` row source; rowwise methods
    stream its row blocks (Dask: one task per block on the active scheduler).
    """
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1
    ):
        raise UsageError(
            f"chunk_size must be a whole number of rows ≥ 1 (or None for a size chosen by "
            f"memory), not {chunk_size!r}"
        )
    if spec.reads_set_columns_only and isinstance(X, MergedSource):
        X, sets, stats = _set_columns(X, sets, stats)
    n_obs = X.shape[0]
    kwargs = dict(params)
    if spec.needs_gene_stats or stats is not None:
        kwargs["gene_stats"] = stats if stats is not None else gene_stats(X, chunk_size)
    if spec.prepare is not None:
        kwargs.update(spec.prepare(sets, **kwargs))
    if not is_rowwise(spec, stats is not None):
        # A method that needs every row at once: an out-of-core matrix is loaded here.
        in_memory = as_source(X).to_memory() if is_lazy(X) or isinstance(X, RowSource) else X
        scores = spec.run(in_memory, sets, **kwargs)
    else:
        src = as_source(X)
        rows_per_chunk = chunk_size or chunk_rows_for(src)
        bar = _progress(progress, n_obs, f"sigscore {spec.name}")
        done = [0]

        def advance(n_rows: int) -> None:
            done[0] += n_rows
            if bar is not None:
                bar.update(n_rows)
            if on_chunk is not None:
                on_chunk(done[0], n_obs)

        with float32_kept(spec.float32_blocks), merge_deferred(spec.merges_in_kernel):
            parts = src.map_chunks(
                partial(_run_rows, spec.run, sets, kwargs), rows_per_chunk, on_chunk=advance
            )
        if bar is not None:
            bar.close()
        scores = np.vstack(parts) if parts else np.empty((0, len(sets)))
    if spec.finalize is not None:
        scores = spec.finalize(scores, **params)
    return np.asarray(scores, dtype=np.float64)


def _set_columns(
    X: MergedSource, sets: list[IndexedSet], stats: GeneStats | None
) -> tuple[Any, list[IndexedSet], GeneStats | None]:
    """Only the sets' columns of a matrix whose duplicated genes are still to be merged,
    merged (``O(set genes)`` rather than a merged copy of the whole matrix), with the sets
    renumbered in the same order and fixed statistics cut to the same columns."""
    genes = np.unique(np.concatenate([s.all_genes for s in sets] or [np.zeros(0, np.int64)]))

    def renumber(cols: np.ndarray) -> np.ndarray:
        return np.searchsorted(genes, cols).astype(np.int64)

    narrow = [dataclasses.replace(s, up=renumber(s.up), down=renumber(s.down)) for s in sets]
    if stats is not None:
        stats = GeneStats(
            mean=np.asarray(stats.mean)[genes], var=np.asarray(stats.var)[genes], n_obs=stats.n_obs
        )
    return X.merged_columns(genes), narrow, stats


def _run_rows(
    run: Callable[..., np.ndarray], sets: list[IndexedSet], kwargs: Mapping[str, Any], block: Any
) -> np.ndarray:
    """Score one row block (a module-level function so Dask workers can unpickle it)."""
    return np.asarray(run(block, sets, **kwargs), dtype=np.float64)


def is_rowwise(spec: MethodSpec, fixed_stats: bool) -> bool:
    """Whether rows can be scored chunk by chunk (given fixed reference stats or not)."""
    return spec.rowwise or (fixed_stats and spec.rowwise_with_stats)


def is_sample_independent(spec: MethodSpec, params: Mapping[str, Any], fixed_stats: bool) -> bool:
    """Whether a sample's score is the same alone or in any batch, for these parameters."""
    if spec.finalize is not None and params.get("normalize", False):
        return False
    if spec.needs_gene_stats or spec.rowwise_with_stats:
        # per-gene statistics from the batch make a score batch-relative; fixed ones do not
        return fixed_stats and is_rowwise(spec, fixed_stats)
    return spec.sample_independent
