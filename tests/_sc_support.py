"""Single-cell fixtures shared by the scanpy-facing and the single-cell method tests.

The real 559-cell celltypist matrix ships as a 53 MB CSV that takes ~10-30 s to parse, so
it is parsed once and cached as h5ad under the system temp folder, keyed by the source
file's size and modification time (the cache is a derived file, never committed).
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from _support import hallmark_sets, shared_path

CACHE = Path(os.environ.get("SIGSCORE_TEST_CACHE", Path(tempfile.gettempdir()) / "sigscore-test"))


def celltypist_counts(dtype: type = np.float32) -> object:
    """The real 559 × 32,786 UMI matrix as an AnnData (raw counts in ``X``, CSR ``dtype``).

    The CSV holds non-integer values, so float32 and float64 are cached separately: the
    float64 copy is the one parity tests against scanpy/decoupler/pyUCell read.
    """
    import anndata as ad

    src = shared_path("singlecell", "celltypist_sample_cell_by_gene.csv.gz")
    st = src.stat()
    tag = "" if np.dtype(dtype) == np.float32 else f"_{np.dtype(dtype).name}"
    cached = CACHE / f"celltypist_{st.st_size}_{int(st.st_mtime)}{tag}.h5ad"
    if cached.exists():
        return ad.read_h5ad(cached)
    frame = pd.read_csv(src, index_col=0)
    adata = ad.AnnData(
        sp.csr_matrix(frame.to_numpy(dtype=dtype)),
        obs=pd.DataFrame(index=frame.index.astype(str)),
        var=pd.DataFrame(index=frame.columns.astype(str)),
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    adata.write_h5ad(tmp)
    tmp.replace(cached)
    return adata


@cache
def _celltypist_lognorm64() -> object:
    import scanpy as sc

    adata = celltypist_counts(np.float64)
    adata.var_names_make_unique()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


def celltypist_lognorm64() -> object:
    """The real 559-cell matrix normalised as a user would (scanpy ``normalize_total`` to
    10,000 + ``log1p``), float64 CSR; a fresh copy of one cached result per call."""
    return _celltypist_lognorm64().copy()


# a small hand-picked set plus four Hallmark sets, for parity tests on the real cells
SMALL_SET = ["STAT3", "SOCS3", "VIM", "CD274", "LYZ", "JUNB", "FOS", "S100A9"]
HALLMARKS = [
    "HALLMARK_IL6_JAK_STAT3_SIGNALING",
    "HALLMARK_INFLAMMATORY_RESPONSE",
    "HALLMARK_HYPOXIA",
    "HALLMARK_OXIDATIVE_PHOSPHORYLATION",
]


def celltypist_parity_case() -> tuple[object, dict[str, list[str]]]:
    """``celltypist_lognorm64()`` and the gene sets ``SMALL`` + ``HALLMARKS`` (GMT order),
    each restricted to the matrix's genes."""
    adata = celltypist_lognorm64()
    present = set(adata.var_names)
    gene_sets = {"SMALL": [g for g in SMALL_SET if g in present]}
    gene_sets.update(hallmark_sets(HALLMARKS, present))
    return adata, gene_sets


def celltypist_lognorm() -> object:
    """The celltypist matrix normalised to 10,000 counts per cell and log1p'd (as a user
    would with scanpy), raw counts kept in ``layers["counts"]``, with a few cell groups."""
    import scanpy as sc

    adata = celltypist_counts()
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    # deterministic groups for per-group plots and aggregation: by LYZ expression tercile
    lyz = np.asarray(adata[:, "LYZ"].X.todense()).ravel()
    cuts = np.quantile(lyz, [1 / 3, 2 / 3])
    adata.obs["lyz_level"] = pd.Categorical(
        np.where(lyz <= cuts[0], "low", np.where(lyz <= cuts[1], "mid", "high"))
    )
    adata.obs["donor"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2 == 0, "d1", "d2"))
    return adata


def indexed_sets(adata: object, gene_sets: dict[str, list[str]]) -> list:
    """Up-only :class:`~sigscore.scoring.methods.IndexedSet` per named set, over ``adata``'s genes."""
    from sigscore.scoring.methods._base import IndexedSet

    pos = adata.var_names.get_indexer
    return [IndexedSet(n, np.sort(pos(g)).astype(np.int64)) for n, g in gene_sets.items()]


def synthetic_genes(n_genes: int) -> list[str]:
    """Every shipped signature gene plus protein-coding symbols up to ``n_genes``."""
    from sigscore.synthetic import signature_gene_universe

    return signature_gene_universe(n_genes)


def synthetic_sparse(n_cells: int, n_genes: int, density: float, seed: int = 0) -> object:
    """A log-normalised-looking sparse AnnData (CSR float32) with real gene symbols."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    nnz = int(n_cells * n_genes * density)
    rows = rng.integers(0, n_cells, nnz)
    cols = rng.integers(0, n_genes, nnz)
    counts = rng.negative_binomial(2, 0.4, nnz).astype(np.float32) + 1.0
    # duplicates (same cell, gene) are summed: still counts
    X = sp.csr_matrix((counts, (rows, cols)), shape=(n_cells, n_genes), dtype=np.float32)
    X.sum_duplicates()
    X.data = np.log1p(X.data).astype(np.float32)
    genes = synthetic_genes(n_genes)
    return ad.AnnData(
        X,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=genes),
    )
