"""Rank methods on row blocks whose duplicated columns are still to be merged (UnmergedRows):
the rank kernel merges as it reads, and every score must equal the eagerly merged block's,
bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import sigscore.scoring.methods._rank_kernels  # noqa: F401  (loaded: small inputs take numba)
from sigscore.genes.merge_kernels import MAX, MEAN, SUM, MergePlan, UnmergedRows, merge_columns
from sigscore.scoring.methods import aucell, singscore, ucell
from sigscore.scoring.methods._base import IndexedSet

RUNS = {
    "ucell": (ucell.run, {"max_rank": 12}),
    "aucell": (aucell.run, {"max_rank": 9}),  # ties="expected"
    "singscore": (singscore.run, {}),
    "singscore_min": (singscore.run, {"ties": "min"}),
}


def _raw(rng: np.random.Generator, n_rows: int, m: int, dtype: type) -> sp.csr_matrix:
    """Sparse rows with negatives, ties, stored zeros, full rows and many distinct values."""
    grid = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 1.0, 2.0, 3.0])
    dense = np.where(rng.random((n_rows, m)) < 0.45, rng.choice(grid, size=(n_rows, m)), 0.0)
    dense[0] = rng.choice(grid, size=m)  # no zeros at all
    dense[1] = rng.normal(size=m)  # > 16 distinct values: the histogram path
    dense[2] = 0.0  # an empty row
    dense[3, :6] = [1.0, -1.0, 0.25, -0.25, 0.0, 0.0]  # groups summing to exactly 0
    X = sp.csr_matrix(dense.astype(dtype))
    coo = X.tocoo()
    # a few stored zeros (kept by a raw CSR, they are values, not implicit zeros)
    z = rng.integers(0, n_rows, 5), rng.integers(0, m, 5)
    free = dense[z] == 0.0
    rows = np.concatenate([coo.row, z[0][free]])
    cols = np.concatenate([coo.col, z[1][free]])
    vals = np.concatenate([coo.data, np.zeros(int(free.sum()), dtype=dtype)])
    out = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, m))
    out.sum_duplicates()
    return out


def _case(seed: int, op: int, dtype: type):
    rng = np.random.default_rng(seed)
    m = 48
    keys = np.array([f"g{i}" for i in range(m)], dtype=object)
    keys[[0, 2]] = "a"  # groups: members both adjacent and far apart
    keys[[1, 3]] = "b"
    keys[[4, 5, 30]] = "c"
    keys[[10, 11]] = "d"
    keys[[20, 41, 47]] = "e"
    codes, uniques = pd.factorize(pd.Index(keys))
    n_out = len(uniques)
    X = _raw(rng, 40, m, dtype)
    plan = MergePlan.from_codes(codes, n_out, op)
    # sets holding groups (a, c, e) and not (b, d), singles, up and down parts
    a, b, c, e = (int(codes[i]) for i in (0, 1, 4, 20))
    singles = [int(codes[i]) for i in (6, 7, 8, 12, 15, 25, 33, 40)]
    sets = [
        IndexedSet("groups", np.array(sorted([a, c, singles[0], singles[1]]))),
        IndexedSet("mixed", np.array(sorted([e, *singles[2:6]])), np.array([a, singles[6]])),
        IndexedSet("singles", np.array(singles[:5])),
        IndexedSet("wide", np.arange(0, n_out, 2), np.array(sorted({b, c, e}))),
    ]
    return X, plan, codes, n_out, sets


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [MAX, SUM, MEAN])
@pytest.mark.parametrize("method", sorted(RUNS))
def test_unmerged_rows_score_as_the_merged_block(method, op, dtype, monkeypatch):
    run, params = RUNS[method]
    for seed in range(4):
        X, plan, codes, n_out, sets = _case(100 * seed + op, op, dtype)
        merged = merge_columns(X, codes, n_out, op)
        expected = run(merged, sets, **params)

        def refuse(self, out_dtype=None):  # the kernel must not fall back to a merged copy
            raise AssertionError("merged copy made")

        with monkeypatch.context() as mp:
            mp.setattr(UnmergedRows, "merged", refuse)
            got = run(UnmergedRows(X, plan), sets, **params)
        assert np.array_equal(got, expected, equal_nan=True), (method, op, dtype, seed)


def test_fixup_changes_the_counts():
    """The merged scores differ from scoring the raw columns' first members (the fix-up is
    what makes them equal), so the comparison above can fail."""
    X, plan, codes, _, sets = _case(5, SUM, np.float64)
    first = np.unique(codes, return_index=True)[1]  # each group's first member as its column
    naive = ucell.run(X[:, first], sets, max_rank=12)
    got = ucell.run(UnmergedRows(X, plan), sets, max_rank=12)
    assert not np.array_equal(got, naive)


@pytest.mark.parametrize("method", ["aucell_ordinal", "non_canonical", "numpy_engine"])
def test_fallbacks_merge_the_block(method):
    X, plan, codes, n_out, sets = _case(7, MAX, np.float32)
    block = UnmergedRows(X, plan)
    if method == "aucell_ordinal":
        expected = aucell.run(merge_columns(X, codes, n_out, MAX), sets, ties="ordinal")
        got = aucell.run(block, sets, ties="ordinal")
    elif method == "non_canonical":
        Y = X.copy()
        Y.indices[:2] = Y.indices[:2][::-1].copy()  # row 0 holds all columns: now unsorted
        Y.data[:2] = Y.data[:2][::-1].copy()
        Y.has_sorted_indices = False
        expected = ucell.run(merge_columns(Y, codes, n_out, MAX), sets, max_rank=12)
        got = ucell.run(UnmergedRows(Y, plan), sets, max_rank=12)
    else:
        from sigscore.scoring.methods._ranks import UCELL, segment_sums, set_layout

        layout = set_layout(sets, n_out)
        merged = merge_columns(X, codes, n_out, MAX)
        expected = segment_sums(merged, layout, UCELL, 12.0, engine="numba")
        got = segment_sums(block, layout, UCELL, 12.0, engine="numpy")
    assert np.array_equal(got, expected)
