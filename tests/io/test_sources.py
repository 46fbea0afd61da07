"""Row-chunk sources: in-memory, backed h5ad, zarr and Dask give the same scores.

Equality is checked on the real 559-cell celltypist matrix and a synthetic 50,000-cell sparse
matrix, with the same row chunking in every path (rank methods then agree bit for bit;
gene-statistic methods to float rounding of the streamed sums). A subprocess scores a
backed h5ad whose dense form is > 4× the RSS bound and reports its peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from _sc_support import celltypist_lognorm, synthetic_sparse
from _support import REPO_ROOT
from sigscore.errors import InputError
from sigscore.io.sources import (
    BackedSource,
    DaskSource,
    MemorySource,
    MergedSource,
    as_source,
    is_lazy,
    read_zarr_backed,
)
from sigscore.scoring import gene_stats

ad = pytest.importorskip("anndata")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

RANK_METHODS = ("ucell", "aucell", "singscore")
STAT_METHODS = ("module_score", "mean")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


# --------------------------------------------------------------------------------------
# the protocol on small matrices (hand-checkable)
# --------------------------------------------------------------------------------------
def _small() -> sp.csr_matrix:
    rng = np.random.default_rng(3)
    X = sp.random(37, 11, density=0.3, format="csr", random_state=rng)
    return sp.csr_matrix(X)


@pytest.mark.parametrize("dense", [False, True])
def test_column_maps_compose_like_matrix_algebra(dense: bool) -> None:
    X = _small()
    Xm = X.toarray() if dense else X
    keep = np.array([4, 0, 7, 2, 9])
    agg = sp.csr_matrix(
        (np.ones(5), ([0, 1, 2, 3, 4], [0, 1, 0, 2, 1])), shape=(5, 3)
    )  # sums keep[0]+keep[2], keep[1]+keep[4], keep[3]
    src = as_source(Xm).select_columns(keep).sum_columns(agg)
    expected = (X[:, keep] @ agg).toarray()
    got = src[5:30]
    got = got.toarray() if sp.issparse(got) else got
    np.testing.assert_allclose(got, expected[5:30])
    assert src.shape == (37, 3)
    whole = src.to_memory()
    np.testing.assert_allclose(whole.toarray() if sp.issparse(whole) else whole, expected)


def test_iter_chunks_cover_every_row_once() -> None:
    src = MemorySource(_small())
    seen = [rows for rows, _ in src.iter_chunks(10)]
    assert [(r.start, r.stop) for r in seen] == [(0, 10), (10, 20), (20, 30), (30, 37)]


def test_gene_stats_stream_equals_numpy() -> None:
    X = _small()
    dense = X.toarray()
    for chunk in (1, 7, 100):
        gs = gene_stats(as_source(X), chunk)
        np.testing.assert_allclose(gs.mean, dense.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(gs.var, dense.var(axis=0, ddof=1), rtol=1e-10, atol=1e-15)
    gs_dask = gene_stats(da.from_array(dense, chunks=(8, 11)), 8)
    np.testing.assert_allclose(gs_dask.var, dense.var(axis=0, ddof=1), rtol=1e-10, atol=1e-15)


def test_nonfinite_value_named_by_row_and_gene(tmp_path) -> None:
    X = _small().toarray()
    X[21, 6] = np.nan
    a = ad.AnnData(X, var=pd.DataFrame(index=[f"G{i}" for i in range(11)]))
    a.write_h5ad(tmp_path / "nan.h5ad")
    b = ad.read_h5ad(tmp_path / "nan.h5ad", backed="r")
    src = as_source(b.X)
    src.var_names = b.var_names
    with pytest.raises(InputError, match=r"row 21, gene 'G6'"):
        list(src.iter_chunks(8))


def test_backed_csc_is_refused_with_advice(tmp_path) -> None:
    a = ad.AnnData(sp.csc_matrix(_small()))
    a.write_h5ad(tmp_path / "csc.h5ad")
    b = ad.read_h5ad(tmp_path / "csc.h5ad", backed="r")
    with pytest.raises(InputError, match="CSC"):
        as_source(b.X)


def test_kinds_are_recognised(tmp_path) -> None:
    X = _small()
    a = ad.AnnData(X)
    a.write_h5ad(tmp_path / "k.h5ad")
    a.write_zarr(tmp_path / "k.zarr")
    b = ad.read_h5ad(tmp_path / "k.h5ad", backed="r")
    z = read_zarr_backed(tmp_path / "k.zarr")
    assert isinstance(as_source(b.X), BackedSource) and is_lazy(b.X)
    assert isinstance(as_source(z.X), BackedSource) and as_source(z.X).sparse
    assert isinstance(as_source(da.from_array(X.toarray())), DaskSource)
    assert not is_lazy(X)
    np.testing.assert_array_equal(as_source(z.X)[0:37].toarray(), X.toarray())


# --------------------------------------------------------------------------------------
# identical scores through every path
# --------------------------------------------------------------------------------------
def _all_paths(adata, tmp_path, client, methods, chunk: int) -> dict[str, dict[str, np.ndarray]]:
    """Scores per path and method; each path scores the same log-normalised CSR matrix."""
    import sigscore.tl as tl

    h5 = tmp_path / "m.h5ad"
    zr = tmp_path / "m.zarr"
    plain = ad.AnnData(adata.X, obs=adata.obs[[]].copy(), var=adata.var[[]].copy())
    plain.write_h5ad(h5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.write_zarr(zr)
    dense_chunks = ad.AnnData(
        da.from_array(adata.X, chunks=(chunk, adata.n_vars), asarray=False),
        obs=adata.obs[[]].copy(),
        var=adata.var[[]].copy(),
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for m in methods:
        res = {}
        for name in ("memory", "backed", "zarr", "dask_local", "dask_cluster"):
            if name == "memory":
                target = plain
            elif name == "backed":
                target = ad.read_h5ad(h5, backed="r")
            elif name == "zarr":
                target = read_zarr_backed(zr)
            else:
                target = dense_chunks
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if name == "dask_cluster":
                    with client.as_current():
                        tl.score(target, method=m, chunk_size=chunk, progress=False)
                elif name == "dask_local":
                    with dask.config.set(scheduler="threads"):
                        tl.score(target, method=m, chunk_size=chunk, progress=False)
                else:
                    tl.score(target, method=m, chunk_size=chunk, progress=False)
            res[name] = target.obsm["sigscore"].to_numpy().copy()
            assert (
                "streamed"
                in " ".join(json.loads(target.uns["sigscore"]["manifest_json"])["input"]["notes"])
                or name == "memory"
            )
        out[m] = res
    return out


def _assert_same(results: dict[str, dict[str, np.ndarray]]) -> None:
    for m, res in results.items():
        ref = res["memory"]
        assert np.isfinite(ref).any(), m
        for name, got in res.items():
            if m in RANK_METHODS:
                np.testing.assert_array_equal(got, ref, err_msg=f"{m}: {name} vs memory")
            else:  # streamed gene sums add in another order: equal to rounding
                np.testing.assert_allclose(
                    got, ref, rtol=1e-9, atol=1e-12, err_msg=f"{m}: {name} vs memory"
                )


def test_real_559_cells_identical_in_memory_backed_zarr_dask(tmp_path, client) -> None:
    adata = celltypist_lognorm()
    results = _all_paths(adata, tmp_path, client, RANK_METHODS + STAT_METHODS, chunk=150)
    _assert_same(results)


def test_synthetic_50k_cells_identical_in_memory_backed_zarr_dask(tmp_path, client) -> None:
    adata = synthetic_sparse(50_000, 3_000, density=0.05, seed=1)
    results = _all_paths(adata, tmp_path, client, ("singscore", "module_score"), chunk=12_500)
    _assert_same(results)


def test_duplicate_genes_merged_the_same_when_backed(tmp_path) -> None:
    import sigscore.tl as tl

    adata = celltypist_lognorm()
    stat3 = int(np.flatnonzero(adata.var_names == "STAT3")[0])
    cols = np.unique(np.r_[np.arange(4000), stat3])
    sub = adata[:, cols].copy()
    names = list(sub.var_names)
    names[0] = "STAT3"  # a duplicated symbol: merged per cell by max (log data) on both paths
    plain = ad.AnnData(sub.X, obs=sub.obs[[]].copy(), var=pd.DataFrame(index=names))
    plain.write_h5ad(tmp_path / "dup.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.score(plain, method="singscore", chunk_size=100, progress=False)
        backed = ad.read_h5ad(tmp_path / "dup.h5ad", backed="r")
        tl.score(backed, method="singscore", chunk_size=100, progress=False)
    np.testing.assert_array_equal(
        backed.obsm["sigscore"].to_numpy(), plain.obsm["sigscore"].to_numpy()
    )


# --------------------------------------------------------------------------------------
# memory bound
# --------------------------------------------------------------------------------------
# Streaming may add at most RSS_GROWTH_MB on top of the interpreter, imports and compiled
# kernels (whose size depends on the environment, e.g. a cold numba cache); the whole
# process must stay under RSS_BOUND_MB. The dense matrix alone would need 1.8 GB.
RSS_GROWTH_MB = 150.0
RSS_BOUND_MB = 600.0

_CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")

    def hwm():  # VmHWM: peak RSS of this process image (ru_maxrss survives fork + exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    import anndata as ad
    import numpy as np
    import scipy.sparse as sp
    import sigscore.tl as tl
    from sigscore.genes import gene_table
    from sigscore.scoring.methods import IndexedSet, get_method
    gene_table()
    from sigscore.scoring.methods._ranks import SMALL_CELLS
    # compile the kernels first (a cold numba cache costs ~100 MB of LLVM memory, which is
    # not what this test measures; an input over SMALL_CELLS takes the numba path), then
    # reset the high-water mark (Linux clear_refs "5")
    warm = sp.csr_matrix((1, SMALL_CELLS + 1))
    get_method("singscore").run(warm, [IndexedSet("w", np.array([0, 1]))])
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = hwm()
    adata = ad.read_h5ad(sys.argv[1], backed="r")
    tl.score(adata, method="singscore", chunk_size=1000, progress=False)
    peak = hwm()
    print(json.dumps({"baseline_mb": base, "peak_mb": peak,
                      "finite": float((adata.obsm["sigscore"].notna()).to_numpy().mean())}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_backed_scoring_memory_is_bounded_by_the_chunk(tmp_path) -> None:
    n_cells, n_genes = 30_000, 8_000  # dense float64: 1.83 GB, > 10 × the growth bound
    adata = synthetic_sparse(n_cells, n_genes, density=0.04, seed=2)
    path = tmp_path / "big.h5ad"
    adata.write_h5ad(path)
    nnz = adata.X.nnz
    del adata
    dense_mb = n_cells * n_genes * 8 / 1024**2
    assert dense_mb > 10 * RSS_GROWTH_MB and dense_mb > 3 * RSS_BOUND_MB
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"\nbacked scoring of {n_cells}x{n_genes} ({nnz:,} nnz; dense {dense_mb:.0f} MB): "
        f"baseline {info['baseline_mb']:.0f} MB, peak {info['peak_mb']:.0f} MB "
        f"(bounds: growth {RSS_GROWTH_MB:.0f} MB, total {RSS_BOUND_MB:.0f} MB)"
    )
    assert info["finite"] > 0.5
    assert info["peak_mb"] - info["baseline_mb"] < RSS_GROWTH_MB
    assert info["peak_mb"] < RSS_BOUND_MB


@pytest.mark.parametrize("rule", ["max", "sum", "mean"])
@pytest.mark.parametrize("dense", [False, True])
def test_duplicate_merge_streams_like_in_memory(rule: str, dense: bool) -> None:
    from sigscore.io.expression import Expression, merge_duplicate_genes

    X = _small()
    Xm = X.toarray() if dense else X
    keys = ["A", "B", "A", "C", "D", "B", "E", "A", "F", "G", "H"]
    names = pd.Index([f"g{i}" for i in range(11)])
    obs = pd.Index([f"c{i}" for i in range(37)])
    mem, merged = merge_duplicate_genes(Expression(Xm, obs, names), keys, rule=rule)
    lazy, merged_lazy = merge_duplicate_genes(
        Expression(as_source(da.from_array(Xm, chunks=(10, 11))), obs, names), keys, rule=rule
    )
    assert merged == merged_lazy and list(mem.var_names) == list(lazy.var_names)
    got = lazy.X.to_memory()
    want = mem.X
    np.testing.assert_allclose(
        got.toarray() if sp.issparse(got) else got, want.toarray() if sp.issparse(want) else want
    )


@pytest.mark.parametrize("rule", ["max", "sum", "mean"])
@pytest.mark.parametrize("layout", ["csr32", "csr64", "C", "F"])
def test_deferred_merge_blocks_and_columns_equal_the_eager_merge(rule: str, layout: str) -> None:
    """A MergedSource's row blocks, whole matrix and column subsets hold exactly the values
    of the eager merge (float64 blocks, as every row source hands out)."""
    from sigscore.io.expression import Expression, merge_duplicate_genes

    rng = np.random.default_rng(8)
    dense = rng.normal(0.0, 3.0, size=(37, 11)) * (rng.random((37, 11)) < 0.6)
    if layout.startswith("csr"):
        X = sp.csr_matrix(dense.astype(np.float32 if layout == "csr32" else np.float64))
    else:
        X = np.asfortranarray(dense) if layout == "F" else np.ascontiguousarray(dense)
    keys = ["A", "B", "A", "C", "D", "B", "E", "A", "F", "G", "A"]
    expr = Expression(X, pd.Index([f"c{i}" for i in range(37)]), pd.Index(keys))
    eager, merged = merge_duplicate_genes(expr, keys, rule=rule)
    deferred, merged_deferred = merge_duplicate_genes(expr, keys, rule=rule, defer=True)
    assert isinstance(deferred.X, MergedSource) and not is_lazy(deferred.X)
    assert merged == merged_deferred and deferred.notes == eager.notes
    assert deferred.X.shape == eager.X.shape == (37, 7)

    def dense_of(m):
        return m.toarray() if sp.issparse(m) else np.asarray(m)

    want = dense_of(eager.X)
    whole = deferred.X.to_memory()
    assert whole.dtype == X.dtype  # the whole matrix keeps the input's type
    np.testing.assert_array_equal(dense_of(whole), want)
    for chunk in (1, 5, 37):
        blocks = [dense_of(b) for _, b in deferred.X.iter_chunks(chunk)]
        assert all(b.dtype == np.float64 for b in blocks)
        np.testing.assert_array_equal(np.vstack(blocks), want.astype(np.float64))
    for cols in ([0], [1, 4], [0, 2, 3, 6], list(range(7))):
        np.testing.assert_array_equal(
            dense_of(deferred.X.merged_columns(np.array(cols))), want[:, cols]
        )
    if sp.issparse(X):  # chunk sizing sees at most the input's stored values per row
        assert eager.X.nnz / 37 <= deferred.X.mean_row_nnz() <= X.nnz / 37


def _duplicated(
    rng: np.random.Generator, n_obs: int, dtype: type
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse rows over 40 columns, 6 of them merging into 3 groups (codes numbered by first
    appearance, as harmonise_columns numbers them): negative values, members not stored,
    a group summing to 0, empty rows."""
    X = sp.random(n_obs, 40, density=0.5, random_state=rng, format="csr", dtype=np.float64)
    X.data = rng.normal(0.0, 3.0, X.nnz) * 10.0 ** rng.uniform(-3, 3, X.nnz)
    X = sp.lil_matrix(X)
    X[::7] = 0.0  # empty rows
    X[1, 5], X[1, 17] = 2.5, -2.5  # group (5, 17) sums to 0 in row 1
    X = sp.csr_matrix(X, dtype=dtype)
    X.eliminate_zeros()
    keys = np.arange(40)
    keys[[17, 30]] = 5  # three members, of which rows store any subset
    keys[21] = 2
    keys[39] = 38
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    codes = np.argsort(np.argsort(first))[codes]  # renumbered by first appearance
    return X, codes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel_from", [None, 300, 100_000])
def test_merged_column_sums_equal_those_of_the_eager_merge(
    dtype: type, parallel_from: int | None, monkeypatch
) -> None:
    """MergedSource.column_sums reads the raw rows (no merged block), with exactly the sums
    of the merged matrix: one pass (scipy), two threads (numba) or undecided (merged)."""
    from sigscore.genes.merge_kernels import MAX, MEAN, SUM, merge_columns
    from sigscore.io import blocks, sources

    if parallel_from is not None:  # small blocks take the two-thread split of big ones
        monkeypatch.setattr(blocks, "PARALLEL_SUMS_MIN_NNZ", parallel_from)
        monkeypatch.setattr(sources, "PARALLEL_SUMS_MIN_NNZ", parallel_from)
    X, codes = _duplicated(np.random.default_rng(5), 300, dtype)
    n_out = int(codes.max()) + 1
    for op in (MAX, SUM, MEAN):
        eager = MemorySource(merge_columns(X, codes, n_out, op))
        source = MergedSource(X, codes, n_out, op)
        for chunk in (1, 17, 37, 150, 300):  # 17 rows: split undecided at 300
            got = source.column_sums(chunk)
            want = eager.column_sums(chunk)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
            assert not np.array_equal(got[0], MemorySource(X).column_sums(chunk)[0][:n_out])
    # rows whose columns are not in order are merged (and canonicalised) first
    shuffled = X.copy()
    row = slice(shuffled.indptr[2], shuffled.indptr[3])
    shuffled.indices[row], shuffled.data[row] = (
        shuffled.indices[row][::-1],
        shuffled.data[row][::-1],
    )
    got = MergedSource(shuffled, codes, n_out, SUM).column_sums(100)
    want = MemorySource(merge_columns(X, codes, n_out, SUM)).column_sums(100)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
