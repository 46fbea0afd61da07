"""AUCell: hand-computed cases, expectation over random ties, decoupler 2.2 parity, properties."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _rank_properties import assert_rank_method_properties, problems
from _sc_support import indexed_sets
from sigscore.errors import UsageError
from sigscore.scoring.methods import get_method
from sigscore.scoring.methods._base import IndexedSet
from sigscore.scoring.methods.aucell import resolve_n_up, run


def _decoupler(adata, gene_sets):
    dc = pytest.importorskip("decoupler")
    net = pd.DataFrame(
        [(n, g) for n, genes in gene_sets.items() for g in genes], columns=["source", "target"]
    )
    data = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dc.mt.aucell(data, net, tmin=1, verbose=False)
    return data.obsm["score_aucell"]


@pytest.fixture(scope="module")
def detected(cells):
    """decoupler drops genes never detected in the batch (from the matrix and the sets)."""
    adata, gene_sets = cells
    keep = np.asarray(adata.X.getnnz(axis=0) > 0)
    sub = adata[:, keep].copy()
    present = set(sub.var_names)
    sets = {n: [g for g in genes if g in present] for n, genes in gene_sets.items()}
    return sub, sets, math.ceil(0.05 * sub.n_vars)  # decoupler's default n_up


def test_parity_with_decoupler_ordinal_ties(detected) -> None:
    """Same tie-breaking (decoupler's column shuffle, then column order) -> same numbers."""
    adata, gene_sets, n_up = detected
    ref = _decoupler(adata, gene_sets)
    # decoupler.pp.data._break_ties: columns permuted by default_rng(0).choice(n, n, False)
    order = np.random.default_rng(seed=0).choice(
        np.arange(adata.n_vars), adata.n_vars, replace=False
    )
    shuffled = adata[:, order]
    sets = indexed_sets(shuffled, gene_sets)
    ours = run(shuffled.X, sets, max_rank=n_up, ties="ordinal")
    for j, s in enumerate(sets):
        r = np.corrcoef(ours[:, j], ref[s.name])[0, 1]
        assert r >= 0.999, f"{s.name}: Pearson {r:.6f}"
        assert np.max(np.abs(ours[:, j] - ref[s.name].to_numpy())) <= 1e-12, s.name


def test_default_ties_agree_with_decoupler_as_well_as_it_agrees_with_itself(detected) -> None:
    """decoupler's result depends on its column shuffle; ours (the expectation) does not."""
    adata, gene_sets, n_up = detected
    ref = _decoupler(adata, gene_sets)
    perm = np.random.default_rng(7).permutation(adata.n_vars)
    ref_other_order = _decoupler(adata[:, perm].copy(), gene_sets)
    ours = run(adata.X, indexed_sets(adata, gene_sets), max_rank=n_up)
    for j, name in enumerate(gene_sets):
        r_ours = np.corrcoef(ours[:, j], ref[name])[0, 1]
        r_self = np.corrcoef(ref_other_order[name], ref[name])[0, 1]
        assert r_ours >= 0.985, f"{name}: Pearson {r_ours:.4f}"
        assert r_ours >= r_self - 0.002, f"{name}: ours {r_ours:.4f} vs decoupler-self {r_self:.4f}"


def test_expected_ties_equal_the_average_over_all_tie_orders() -> None:
    X = np.array([[3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])
    s = IndexedSet("s", np.array([1, 4, 5]))
    n_up = 5
    ours = run(X, [s], max_rank=n_up)[:, 0]
    max_auc = sum(n_up - j for j in range(1, min(3, n_up - 1) + 1))
    for i, row in enumerate(X):
        total = 0.0
        perms = list(itertools.permutations(range(row.size)))
        for p in perms:  # every tie-breaking order (stable sort by value, then by p)
            order = np.lexsort((np.array(p), -row))
            rank = np.empty(row.size)
            rank[order] = np.arange(1, row.size + 1)
            total += np.clip(n_up - rank[s.up], 0, None).sum()
        np.testing.assert_allclose(ours[i], total / len(perms) / max_auc, rtol=1e-12)


def test_hand_computed_example() -> None:
    # descending ordinal ranks without ties: g0=1, g1=2, g2=3, g3=4, g4=5
    X = np.array([[9.0, 7.0, 5.0, 3.0, 1.0]])
    s = IndexedSet("s", np.array([1, 3]))
    # n_up = 4: AUC = (4 - 2) + 0 = 2; maxAUC = (4 - 1) + (4 - 2) = 5
    np.testing.assert_allclose(run(X, [s], max_rank=4), [[2 / 5]])
    # fraction: ceil(0.5 * 5) = 3 -> AUC = 1; maxAUC = 2 + 1
    np.testing.assert_allclose(run(X, [s], max_rank=0.5), [[1 / 3]])
    d = IndexedSet("d", np.array([0]), np.array([1]))  # up: (4-1)/3, down: (4-2)/3
    np.testing.assert_allclose(run(X, [d], max_rank=4), [[3 / 3 - 2 / 3]])


def test_n_up_and_errors() -> None:
    assert resolve_n_up(0.05, 32786) == 1640  # AUCell's ceiling(0.05 * nrow)
    assert resolve_n_up(100, 32786) == 100
    with pytest.raises(UsageError, match="between 2"):
        resolve_n_up(10, 5)
    with pytest.raises(UsageError, match="ties"):
        run(np.ones((1, 4)), [IndexedSet("s", np.array([0]))], ties="random")
    spec = get_method("aucell")
    assert spec.rowwise and spec.sample_independent and spec.run is run


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(problems(lambda g: st.integers(2, g)))
def test_properties(problem) -> None:
    A, sets, n_up = problem
    assert_rank_method_properties(lambda X, s: run(X, s, max_rank=n_up), A, sets)


def test_a_row_without_zeros() -> None:
    """Scaled data: a row whose values are all stored and non-zero has no zero block (the
    kernel once divided by its empty size). Ranks: 3 -> 1, 0.5 -> 2, -1 -> 3, -2 -> 4."""
    X = np.array([[-2.0, -1.0, 3.0, 0.5]])
    s = IndexedSet("s", np.array([0, 2]))
    # n_up = 4: AUC = (4 - 1) + (4 - 4) = 3; maxAUC = (4 - 1) + (4 - 2) = 5
    np.testing.assert_allclose(run(X, [s], max_rank=4), [[3 / 5]], rtol=1e-15)
    np.testing.assert_allclose(run(X.astype(np.float32), [s], max_rank=4), [[3 / 5]], rtol=1e-15)
