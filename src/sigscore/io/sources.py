"""Row-chunk sources: one small protocol over in-memory, on-disk and Dask matrices.

Every rowwise scoring method computes a row's score from that row alone (plus per-gene
statistics), so any observations × genes matrix that can hand out contiguous row blocks
can be scored with memory bounded by the block, not by the matrix. A :class:`RowSource`
hands out such blocks as float64 ``numpy.ndarray`` or ``scipy.sparse.csr_matrix``:

* :class:`MemorySource` — a dense array or CSR matrix already in memory;
* :class:`BackedSource` — anything that slices rows lazily: the ``X`` of an AnnData opened
  with ``anndata.read_h5ad(path, backed="r")`` (an on-disk CSR group or an ``h5py``
  dataset), the same from a zarr store (:func:`read_zarr_backed`), an ``h5py``/``zarr``
  array;
* :class:`DaskSource` — a ``dask.array.Array`` (dense or with scipy-sparse chunks). With a
  ``dask.distributed`` client active, row blocks are scored as tasks on its workers
  (``Client("tcp://scheduler:8786")`` for a real cluster, ``LocalCluster`` on one machine);
  without one, dask's local threaded scheduler runs them. Dask does all the scheduling.

A source may carry a *column map* (a selection or a summing matrix, as produced when gene
identifiers are harmonised and duplicates merged); it is applied to each block as it is
read, so the harmonised matrix is never materialised. Blocks are checked for NaN/Inf as
they stream past, and the error names the row and gene.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError, UsageError
from .blocks import (
    PARALLEL_SUMS_MIN_NNZ,
    Block,
    as_float_block,
    csr_block,
    group_max,
    merge_is_deferred,
    sums_of_block,
)
from .chunks import chunk_rows_for

if TYPE_CHECKING:
    from ..genes.merge_kernels import MergePlan

LOCAL_SCHEDULERS = (
    "threads",
    "threading",
    "sync",
    "synchronous",
    "single-threaded",
    "processes",
    "multiprocessing",
)

__all__ = [
    "BackedSource",
    "Block",
    "DaskSource",
    "MemorySource",
    "MergedSource",
    "RowSource",
    "as_source",
    "is_lazy",
    "read_zarr_backed",
]


class RowSource:
    """An observations × genes matrix that yields contiguous row blocks.

    Subclasses implement :meth:`_read` (raw rows ``start:stop``, any numeric dtype). The
    public :meth:`__getitem__` accepts a row ``slice`` (what the scoring loop asks for) and
    returns a float64 block with the column map applied and finiteness checked.
    """

    #: True when rows live outside this process's memory (disk, Dask); used to decide
    #: whether a non-rowwise method may load the matrix.
    lazy: bool = True

    def __init__(self, shape: tuple[int, int], *, sparse: bool, source: str) -> None:
        self._raw_shape = (int(shape[0]), int(shape[1]))
        self.sparse = bool(sparse)
        self.source = source
        # Column map: steps applied to each block in order, with the column count after each.
        self._steps: tuple[tuple[str, Any, int], ...] = ()
        self.var_names: pd.Index | None = None  # raw column names, for error messages only
        self.check_finite = True

    # -- shape and column maps -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        n_cols = self._steps[-1][2] if self._steps else self._raw_shape[1]
        return (self._raw_shape[0], n_cols)

    @property
    def ndim(self) -> int:
        return 2

    def _with_step(self, kind: str, arg: Any, n_cols: int) -> RowSource:
        out = copy.copy(self)
        out._steps = (*self._steps, (kind, arg, int(n_cols)))
        return out

    def select_columns(self, columns: np.ndarray) -> RowSource:
        """A view keeping ``columns`` (positions in this source's current columns)."""
        columns = np.asarray(columns, dtype=np.int64)
        return self._with_step("select", columns, columns.size)

    def sum_columns(self, agg: sp.spmatrix) -> RowSource:
        """A view whose columns are ``current_columns @ agg`` (merging duplicate genes)."""
        agg = sp.csr_matrix(agg, dtype=np.float64)
        if agg.shape[0] != self.shape[1]:
            raise ValueError(f"agg has {agg.shape[0]} rows for {self.shape[1]} columns")
        return self._with_step("matmul", agg, agg.shape[1])

    def max_columns(self, codes: np.ndarray, n_out: int) -> RowSource:
        """A view whose column ``k`` is, per row, the max of the columns with ``codes == k``."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size != self.shape[1]:
            raise ValueError(f"{codes.size} codes for {self.shape[1]} columns")
        return self._with_step("max", codes, n_out)

    def __matmul__(self, agg: Any) -> RowSource:
        return self.sum_columns(agg)

    # -- reading ---------------------------------------------------------------------------
    def _read(self, start: int, stop: int) -> Any:
        raise NotImplementedError

    def _map_columns(self, block: Block) -> Block:
        for kind, arg, n_cols in self._steps:
            if kind == "select":
                block = block[:, arg]
            elif kind == "matmul":
                block = block @ arg
            else:
                block = group_max(block, arg, n_cols)
            if sp.issparse(block):
                block = sp.csr_matrix(block)
        return block

    def _finish(self, block: Any, start: int) -> Block:
        block = as_float_block(block)
        if self.check_finite:  # on the raw columns, so the error can name the gene
            self._check_block(block, start)
        return self._map_columns(block)

    def _check_block(self, block: Block, start: int) -> None:
        values = block.data if sp.issparse(block) else block
        bad = ~np.isfinite(values)
        if not bad.any():
            return
        if sp.issparse(block):
            pos = int(np.flatnonzero(bad)[0])
            row = int(np.searchsorted(block.indptr, pos, side="right") - 1)
            col = int(block.indices[pos])
        else:
            row, col = (int(i) for i in np.argwhere(bad)[0])
        gene = self.var_names[col] if self.var_names is not None else f"column {col}"
        raise InputError(
            f"{self.source}: missing or infinite value (NaN/Inf) at row {start + row}, gene "
            f"{gene!r}; impute or remove such values before scoring",
            detail={"row": start + row, "gene": str(gene)},
        )

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            rows, cols = key
            if isinstance(rows, slice) and rows == slice(None):
                return self.select_columns(np.arange(self.shape[1])[cols])
            raise UsageError("a row source supports X[start:stop] and X[:, columns] only")
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise UsageError("a row source supports contiguous row slices X[start:stop] only")
        start, stop, _ = key.indices(self.shape[0])
        return self._finish(self._read(start, stop), start)

    def iter_chunks(self, chunk_rows: int) -> Iterator[tuple[slice, Block]]:
        """``(rows, block)`` for consecutive blocks of at most ``chunk_rows`` rows."""
        n_obs = self.shape[0]
        for start in range(0, n_obs, max(1, int(chunk_rows))):
            rows = slice(start, min(n_obs, start + int(chunk_rows)))
            yield rows, self[rows]

    def map_chunks(
        self,
        fn: Callable[[Block], np.ndarray],
        chunk_rows: int,
        *,
        on_chunk: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """``fn`` applied to every row block, results in row order.

        ``on_chunk(n_rows_done_in_this_chunk)`` is called as blocks finish (for progress).
        """
        out = []
        for rows, block in self.iter_chunks(chunk_rows):
            out.append(fn(block))
            if on_chunk is not None:
                on_chunk(rows.stop - rows.start)
        return out

    # -- whole-matrix helpers (streamed) --------------------------------------------------
    def mean_row_nnz(self) -> float:
        """Stored values per row (sparse), estimated from the first rows; for chunk sizing."""
        if not self.sparse:
            return float(self.shape[1])
        if not hasattr(self, "_nnz_estimate"):
            block = self._read(0, min(self._raw_shape[0], 1000))
            n = block.shape[0] if block.shape[0] else 1
            self._nnz_estimate = float(block.nnz if sp.issparse(block) else block.size) / n
        return self._nnz_estimate

    def sample_block(self, max_rows: int = 2000) -> Block:
        """The first rows, for guessing the value scale."""
        return self[0 : min(self.shape[0], max_rows)]

    def column_sums(self, chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-column sum and sum of squares, in one streaming pass."""
        chunk_rows = chunk_rows or chunk_rows_for(self)
        parts = self.map_chunks(sums_of_block, chunk_rows)
        if not parts:
            return np.zeros(self.shape[1]), np.zeros(self.shape[1])
        total = np.sum(parts, axis=0)
        return total[0], total[1]

    def mean(self, axis: int | None = None) -> np.ndarray:
        if axis != 0:
            raise UsageError("a row source computes column means (axis=0) only")
        total, _ = self.column_sums()
        return total / max(self.shape[0], 1)

    def to_memory(self) -> Block:
        """Load the whole (column-mapped) matrix; used only by methods that need every row."""
        blocks = [b for _, b in self.iter_chunks(chunk_rows_for(self))]
        if not blocks:
            return np.zeros(self.shape)
        return sp.vstack(blocks, format="csr") if self.sparse else np.vstack(blocks)

    def __repr__(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        return f"{type(self).__name__}({self.shape[0]} × {self.shape[1]}, {kind}, {self.source})"


class MemorySource(RowSource):
    """A dense array or sparse matrix in memory (converted to CSR once, if sparse)."""

    lazy = False

    def __init__(self, X: Any, source: str = "matrix") -> None:
        X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
        super().__init__(X.shape, sparse=sp.issparse(X), source=source)
        self.X = X
        # In-memory input was checked for NaN/Inf once, as a whole, by sigscore.io.expression.
        self.check_finite = False

    def mean_row_nnz(self) -> float:
        if sp.issparse(self.X):
            return self.X.nnz / max(self.X.shape[0], 1)
        return float(self.X.shape[1])

    def _read(self, start: int, stop: int) -> Any:
        X = self.X
        if not sp.issparse(X):
            return X[start:stop]
        # A view of the rows' stored values: scipy's row slicing copies them (and was 65 % of
        # module_score's time at 20k cells); scoring never writes into a block.
        lo, hi = X.indptr[start], X.indptr[stop]
        return csr_block(  # scipy's constructor would copy the slices (its "prune")
            X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo,
            (stop - start, X.shape[1]),
        )  # fmt: skip


class MergedSource(MemorySource):
    """An in-memory matrix whose duplicated gene columns are merged as its rows are read.

    Harmonising TCGA-style names merges a few dozen columns; merging the whole matrix up
    front would hold a second copy of it (1.6x the input for 20k cells). Here each row block
    is merged when it is read (:func:`sigscore.genes.merge_kernels.merge_columns`, the same
    per-row arithmetic, so the values are those of the whole-matrix merge), a sparse block
    straight into the type it is handed on in, in the one pass that would otherwise only
    widen it; methods that
    read only the sets' columns take :meth:`merged_columns`, merging just those. ``codes``
    gives each input column's output column (numbered in order of first appearance) and
    ``op`` the rule (``merge_kernels.MAX``, ``SUM`` or ``MEAN``).
    """

    def __init__(
        self, X: Any, codes: np.ndarray, n_out: int, op: int, source: str = "matrix"
    ) -> None:
        super().__init__(X, source)
        self._raw_shape = (self._raw_shape[0], int(n_out))
        self.codes = np.asarray(codes, dtype=np.int64)
        self.op = int(op)
        self._merged: np.ndarray | None = None  # dense: merged once, on first read
        self._plan: MergePlan | None = None

    @property
    def plan(self) -> MergePlan:
        """The columns' :class:`~sigscore.genes.merge_kernels.MergePlan`, made once for all
        blocks (on first use: a dense matrix never needs it)."""
        if self._plan is None:
            from ..genes.merge_kernels import MergePlan

            self._plan = MergePlan.from_codes(self.codes, self._raw_shape[1], self.op)
        return self._plan

    def merged(self) -> Block:
        """The whole merged matrix in ``X``'s type (what an eager merge returns)."""
        from ..genes.merge_kernels import merge_columns

        if self.sparse:
            return merge_columns(self.X, self.codes, self._raw_shape[1], self.op)
        if self._merged is None:
            # dense rows are not merged block by block: the whole-matrix reductions run over
            # the columns in X's own layout, which a row slice of a Fortran matrix lacks
            self._merged = merge_columns(self.X, self.codes, self._raw_shape[1], self.op)
        return self._merged

    def merged_columns(self, columns: np.ndarray) -> Block:
        """``merged()[:, columns]`` (``columns`` ascending) merging only their input columns."""
        from ..genes.merge_kernels import merge_columns

        columns = np.asarray(columns, dtype=np.int64)
        position = np.full(self._raw_shape[1], -1, dtype=np.int64)
        position[columns] = np.arange(columns.size)
        members = np.flatnonzero(position[self.codes] >= 0)
        sub = self.X[:, members]
        if not self.sparse:
            # the group reductions must see X's layout to give bit-identical values
            fortran = self.X.flags.f_contiguous and not self.X.flags.c_contiguous
            sub = np.asfortranarray(sub) if fortran else np.ascontiguousarray(sub)
        return merge_columns(sub, position[self.codes[members]], columns.size, self.op)

    def mean_row_nnz(self) -> float:
        # The input's stored values per row: at most a few more than the merged rows hold.
        # Chunk sizes are capped for in-memory matrices (io.chunks), so both give the same
        # rows per chunk unless the rows are very wide; there the exact count is taken.
        from .chunks import chunk_rows_for

        raw = super().mean_row_nnz()
        if not self.sparse or chunk_rows_for(_Width(self.shape, raw)) == chunk_rows_for(
            _Width(self.shape, 0.0)
        ):
            return raw
        if not hasattr(self, "_nnz_estimate"):
            self._nnz_estimate = self.merged().nnz / max(self._raw_shape[0], 1)
        return self._nnz_estimate

    def to_memory(self) -> Block:
        return self.merged() if not self._steps else super().to_memory()

    def column_sums(self, chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`RowSource.column_sums` of the merged rows, bit for bit, read from the raw
        rows (no merged copy of each block): a column alone in its group adds its values to
        its output column, a duplicated group its per-row value, in the row order and with
        the two-thread split that :func:`~sigscore.io.blocks.sums_of_block` takes on the
        merged block."""
        wanted = as_float_block(sp.csr_matrix((0, 0), dtype=self.X.dtype)).dtype
        if not self.sparse or self._steps or wanted != np.float64:
            return super().column_sums(chunk_rows)
        from ..genes import merge_jit
        from ..genes.merge_kernels import merge_columns

        chunk_rows = max(1, int(chunk_rows or chunk_rows_for(self)))
        plan, n_obs = self.plan, self._raw_shape[0]
        parts = []
        for start in range(0, n_obs, chunk_rows):
            stop = min(n_obs, start + chunk_rows)
            rows = MemorySource._read(self, start, stop)
            # sums_of_block's split depends on the merged block's stored values: between
            # the raw count and that less every member column of every row
            two = rows.nnz - (stop - start) * plan.members.size > PARALLEL_SUMS_MIN_NNZ
            ok = False
            if two or rows.nnz <= PARALLEL_SUMS_MIN_NNZ:
                ok, acc = merge_jit.merged_column_sums(
                    rows.data, rows.indices, rows.indptr, plan.target, plan.group_code,
                    plan.group_size, plan.op, plan.n_out, 2 if two else 1,
                )  # fmt: skip
            if ok:
                parts.append(acc[0] + acc[1] if two else acc[0])
            else:  # undecided split, or rows not canonical: merge the block and sum it
                merged = merge_columns(rows, plan, plan.n_out, plan.op, out_dtype=wanted)
                parts.append(sums_of_block(merged))
        if not parts:
            return np.zeros(self.shape[1]), np.zeros(self.shape[1])
        total = np.sum(parts, axis=0)
        return total[0], total[1]

    def _finish(self, block: Any, start: int) -> Block:
        from ..genes.merge_kernels import UnmergedRows

        # an unmerged block (see _read) is already of the type it is handed on in, and has
        # no column maps to go through; a memory source checks no values
        return block if isinstance(block, UnmergedRows) else super()._finish(block, start)

    def _read(self, start: int, stop: int) -> Any:
        if not self.sparse:
            return self.merged()[start:stop]
        from ..genes.merge_kernels import UnmergedRows, merge_columns

        rows = super()._read(start, stop)
        # straight into the type the block is handed on in (as_float_block: float64, or
        # float32 kept for rank methods), so no second pass converts it
        wanted = as_float_block(sp.csr_matrix((0, 0), dtype=rows.dtype)).dtype
        if merge_is_deferred() and rows.dtype in (wanted, np.float32) and not self._steps:
            # the consumer merges as it reads. float32 rows go on as they are even where
            # float64 blocks are wanted: those kernels round each group's value to the
            # input's type and widen every value exactly, as the merge-then-widen here
            # would; rows of other types (integers) are merged and converted here
            return UnmergedRows(rows, self.plan)
        return merge_columns(rows, self.plan, self._raw_shape[1], self.op, out_dtype=wanted)


class _Width:
    """Stand-in with a given stored-values-per-row, to ask :func:`chunk_rows_for` about it."""

    sparse = True
    lazy = False

    def __init__(self, shape: tuple[int, int], width: float) -> None:
        self.shape, self._width = shape, width

    def mean_row_nnz(self) -> float:
        return self._width


class BackedSource(RowSource):
    """Rows read lazily from an on-disk array: backed AnnData ``X``, h5py or zarr.

    ``array[start:stop]`` must return the rows in memory (anndata's on-disk CSR datasets,
    ``h5py.Dataset`` and ``zarr.Array`` all do). Only one block is in memory at a time.
    """

    def __init__(self, array: Any, source: str = "backed matrix") -> None:
        from anndata.abc import CSCDataset, CSRDataset

        if isinstance(array, CSCDataset):
            raise InputError(
                f"{source}: the on-disk matrix is CSC (column-compressed), so reading a block of "
                "cells means reading the whole file; rewrite it as CSR (e.g. "
                "adata.X = adata.X.tocsr(); adata.write_h5ad(...)) to score it backed"
            )
        _check_confined(array)
        super().__init__(tuple(array.shape), sparse=isinstance(array, CSRDataset), source=source)
        self.array = array
        self._csr: tuple[Any, Any, np.ndarray] | None = None
        group = getattr(array, "group", None) if self.sparse else None
        if group is not None and {"data", "indices", "indptr"} <= set(group.keys()):
            # Read the CSR arrays directly: row offsets once (8 bytes per row), then one
            # contiguous slice of values and column indices per block. anndata's own
            # slicing re-validates and re-wraps on every call, which costs more per block
            # than the read itself.
            self._csr = (group["data"], group["indices"], np.asarray(group["indptr"][:]))

    def mean_row_nnz(self) -> float:
        if self._csr is not None:
            indptr = self._csr[2]
            return float(indptr[-1] - indptr[0]) / max(self._raw_shape[0], 1)
        return super().mean_row_nnz()

    def _read(self, start: int, stop: int) -> Any:
        if self._csr is None:
            return self.array[start:stop]
        data, indices, indptr = self._csr
        lo, hi = int(indptr[start]), int(indptr[stop])
        return sp.csr_matrix(
            (data[lo:hi], indices[lo:hi], indptr[start : stop + 1] - lo),
            shape=(stop - start, self._raw_shape[1]),
        )


def _check_confined(array: Any) -> None:
    """The file or store behind an on-disk matrix must not reach outside itself.

    anndata opens backed files with plain h5py/zarr, which follow external links, external
    storage and virtual datasets (HDF5) or symbolic links (zarr): refuse such a file before
    any row is read (see :mod:`sigscore.confinement`).
    """
    import h5py

    from .confinement import check_hdf5_confined, check_zarr_confined

    node = getattr(array, "group", array)  # anndata's sparse datasets wrap a group
    if isinstance(node, h5py.Group | h5py.Dataset):
        check_hdf5_confined(node)
        return
    root = getattr(getattr(node, "store", None), "root", None)
    if root is not None:
        check_zarr_confined(root)


class DaskSource(RowSource):
    """A ``dask.array.Array`` scored block by block by whatever dask scheduler is active."""

    def __init__(self, array: Any, source: str = "dask array") -> None:
        meta = getattr(array, "_meta", None)
        super().__init__(tuple(array.shape), sparse=sp.issparse(meta), source=source)
        self.array = array

    def _read(self, start: int, stop: int) -> Any:
        return self.array[start:stop].compute()

    def _row_blocks(self, chunk_rows: int) -> tuple[list[Any], list[int]]:
        arr = self.array
        # Keep the user's row chunking when it already bounds memory; never split genes.
        if max(arr.chunks[0]) > chunk_rows or len(arr.chunks[1]) > 1:
            arr = arr.rechunk({0: chunk_rows, 1: -1})
        return list(arr.to_delayed().ravel()), list(arr.chunks[0])

    def map_chunks(
        self,
        fn: Callable[[Block], np.ndarray],
        chunk_rows: int,
        *,
        on_chunk: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        import dask

        blocks, sizes = self._row_blocks(chunk_rows)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        mapper = copy.copy(self)  # shipped to workers: column map only, not the array
        mapper.array = None
        tasks = [
            dask.delayed(_run_block)(mapper, block, int(start), fn)
            for block, start in zip(blocks, starts, strict=True)
        ]
        client = _active_client()
        if client is None:
            results = list(dask.compute(*tasks))
            if on_chunk is not None:
                on_chunk(int(sum(sizes)))
            return results
        from distributed import as_completed

        futures = client.compute(tasks)
        order = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for fut in as_completed(futures):
            i = order[fut.key]
            results[i] = fut.result()
            if on_chunk is not None:
                on_chunk(sizes[i])
        return results


def _run_block(src: RowSource, block: Any, start: int, fn: Callable[[Block], np.ndarray]) -> Any:
    """Runs on a dask worker: map columns, check values, apply ``fn``."""
    return fn(src._finish(block, start))


def _active_client() -> Any:
    """The current ``dask.distributed`` client, or None (then dask's local scheduler runs)."""
    try:
        import dask
        from distributed import get_client
    except ImportError:
        return None
    # An explicit local scheduler (dask.config.set(scheduler="threads")) wins over a client.
    if dask.config.get("scheduler", None) in LOCAL_SCHEDULERS:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def is_lazy(X: Any) -> bool:
    """Whether ``X`` is a matrix whose rows are read on demand (disk, zarr, Dask)."""
    if isinstance(X, RowSource):
        return X.lazy
    return _is_dask(X) or _is_on_disk(X)


def _is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask") and hasattr(X, "to_delayed")


def _is_on_disk(X: Any) -> bool:
    mod = type(X).__module__
    return (
        mod.startswith("anndata._core.sparse_dataset")
        or mod.startswith("h5py")
        or mod.startswith("zarr")
    )


def as_source(X: Any, source: str | None = None) -> RowSource:
    """Wrap any supported matrix as a :class:`RowSource` (a source is returned as is)."""
    if isinstance(X, RowSource):
        return X
    if _is_dask(X):
        return DaskSource(X, source or "dask array")
    if _is_on_disk(X):
        return BackedSource(X, source or "backed matrix")
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return MemorySource(X, source or "matrix")
    raise UsageError(f"cannot read rows from a {type(X).__name__}")


def read_zarr_backed(store: str | os.PathLike[str]) -> Any:
    """Open an AnnData zarr store with ``X`` left on disk (obs/var are read into memory).

    ``anndata.read_zarr`` loads ``X``; this keeps it as an on-disk CSR dataset (or a zarr
    array when dense), so :func:`sigscore.tl.score` streams it like a backed h5ad.
    """
    import anndata as ad
    import zarr

    from .confinement import check_zarr_confined

    path = Path(store)
    if not path.exists():
        raise InputError(f"zarr store not found: {path}")
    check_zarr_confined(path)  # before zarr reads obs/var through an escaping link
    group = zarr.open_group(str(path), mode="r")
    X_elem = group["X"]
    encoding = dict(X_elem.attrs).get("encoding-type", "array")
    if encoding in ("csr_matrix", "csc_matrix"):
        X = ad.io.sparse_dataset(X_elem)
    else:
        import dask.array as da

        X = da.from_zarr(X_elem)
    obs = ad.io.read_elem(group["obs"])
    var = ad.io.read_elem(group["var"])
    return ad.AnnData(X=X, obs=obs, var=var)
