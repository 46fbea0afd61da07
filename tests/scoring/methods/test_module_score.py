"""module_score: equality with scanpy.tl.score_genes on real cells, chunking, order, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from _sc_support import indexed_sets
from sigscore.errors import UsageError
from sigscore.scoring.methods import get_method
from sigscore.scoring.methods._base import GeneStats, IndexedSet
from sigscore.scoring.methods.module_score import gene_bins, run


def _stats(X) -> GeneStats:
    # scanpy's gene means: float64 column sums / n_obs
    mean = np.asarray(X.sum(axis=0, dtype="float64")).ravel() / X.shape[0]
    return GeneStats(mean=mean, var=np.ones_like(mean), n_obs=X.shape[0])


def _scanpy(adata, genes, **kw) -> np.ndarray:
    import scanpy as sc

    data = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.score_genes(data, genes, **kw)
    return data.obs["score"].to_numpy()


@pytest.mark.parametrize(("ctrl_size", "n_bins", "seed"), [(50, 25, 0), (20, 10, 7)])
def test_equals_scanpy_score_genes(cells, ctrl_size, n_bins, seed) -> None:
    adata, gene_sets = cells
    stats = _stats(adata.X)
    sets = indexed_sets(adata, gene_sets)
    ours = run(
        adata.X, sets, gene_stats=stats, ctrl_size=ctrl_size, n_bins=n_bins, random_state=seed
    )
    for j, (name, genes) in enumerate(gene_sets.items()):
        ref = _scanpy(adata, genes, ctrl_size=ctrl_size, n_bins=n_bins, random_state=seed)
        assert np.max(np.abs(ours[:, j] - ref)) <= 1e-6, name


def test_directional_is_up_minus_down(cells) -> None:
    adata, gene_sets = cells
    up, down = (
        gene_sets["HALLMARK_INFLAMMATORY_RESPONSE"],
        gene_sets["HALLMARK_OXIDATIVE_PHOSPHORYLATION"],
    )
    pos = adata.var_names.get_indexer
    s = IndexedSet("d", np.sort(pos(up)), np.sort(pos(down)))
    ours = run(adata.X, [s], gene_stats=_stats(adata.X))[:, 0]
    ref = _scanpy(adata, up) - _scanpy(adata, down)
    assert np.max(np.abs(ours - ref)) <= 1e-6


def test_chunks_set_order_and_dense(cells) -> None:
    adata, gene_sets = cells
    X = adata.X
    stats = _stats(X)
    sets = indexed_sets(adata, gene_sets)
    whole = run(X, sets, gene_stats=stats)
    chunks = np.vstack(
        [run(X[i : i + 100], sets, gene_stats=stats) for i in range(0, X.shape[0], 100)]
    )
    np.testing.assert_allclose(chunks, whole, atol=1e-12)
    np.testing.assert_allclose(run(X, sets[::-1], gene_stats=stats), whole[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(
        run(X[:20].toarray(), sets, gene_stats=stats), whole[:20], atol=1e-12
    )


def test_bins_follow_scanpy_rule() -> None:
    means = np.array([0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 3.0, np.nan])
    # 7 finite genes, n_bins 4 -> n_items = round(7 / 3) = 2; min ranks 1,1,3,4,5,6,6
    np.testing.assert_array_equal(gene_bins(means, 4), [0, 0, 1, 2, 2, 3, 3, -1])


def test_errors_and_spec() -> None:
    X = sp.csr_matrix(np.eye(4))
    s = [IndexedSet("s", np.array([0]))]
    with pytest.raises(UsageError, match="gene_stats"):
        run(X, s)
    stats = _stats(X)
    with pytest.raises(UsageError, match="random_state"):
        run(X, s, gene_stats=stats, random_state=None)
    with pytest.raises(UsageError, match="control genes"):
        run(X, s, gene_stats=GeneStats(np.arange(4.0), np.ones(4), 4), n_bins=4)
    spec = get_method("module_score")
    assert spec.needs_gene_stats and spec.rowwise and not spec.sample_independent
