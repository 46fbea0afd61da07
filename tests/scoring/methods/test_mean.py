"""mean: signed, weighted mean z-score, checked against a direct dense computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sigscore.errors import UsageError
from sigscore.scoring.methods import get_method
from sigscore.scoring.methods._base import GeneStats, IndexedSet
from sigscore.scoring.methods.mean import run


def _stats(A: np.ndarray) -> GeneStats:
    return GeneStats(mean=A.mean(axis=0), var=A.var(axis=0, ddof=1), n_obs=A.shape[0])


def test_hand_computed() -> None:
    A = np.array([[1.0, 0.0, 5.0, 2.0], [3.0, 2.0, 5.0, 0.0], [5.0, 4.0, 5.0, 1.0]])
    stats = _stats(
        A
    )  # gene 0: mean 3, sd 2; gene 1: mean 2, sd 2; gene 2 constant; gene 3: mean 1, sd 1
    s = IndexedSet("s", np.array([0, 2]), np.array([3]))
    # row 0: z0 = -1, z2 = 0 (constant), z3 = 1 -> (-1 + 0 - 1) / 3
    expected = np.array([(-1 + 0 - 1) / 3, (0 + 0 + 1) / 3, (1 + 0 - 0) / 3])
    np.testing.assert_allclose(run(A, [s], gene_stats=stats)[:, 0], expected)
    w = IndexedSet("w", np.array([0, 1]), up_weights=np.array([3.0, 1.0]))
    expected_w = (3 * (A[:, 0] - 3) / 2 + 1 * (A[:, 1] - 2) / 2) / 4
    np.testing.assert_allclose(run(A, [w], gene_stats=stats)[:, 0], expected_w)


def test_sparse_dense_chunks_and_order() -> None:
    rng = np.random.default_rng(1)
    A = rng.poisson(0.5, size=(50, 30)).astype(float)
    stats = _stats(A)
    sets = [
        IndexedSet(
            "a",
            np.array([1, 4, 9]),
            np.array([2, 3]),
            np.array([1.0, 2.0, 0.5]),
            np.array([1.0, 1.0]),
        ),
        IndexedSet("b", np.arange(10, 30)),
    ]
    dense = run(A, sets, gene_stats=stats)
    np.testing.assert_allclose(run(sp.csr_matrix(A), sets, gene_stats=stats), dense, atol=1e-12)
    np.testing.assert_allclose(run(A[7:8], sets, gene_stats=stats), dense[7:8], atol=1e-12)
    np.testing.assert_allclose(run(A, sets[::-1], gene_stats=stats), dense[:, ::-1], atol=1e-12)
    # direct formula
    z = np.divide(A - stats.mean, stats.sd, out=np.zeros_like(A), where=stats.sd > 0)
    ref = (z[:, [1, 4, 9]] @ [1.0, 2.0, 0.5] - z[:, [2, 3]].sum(axis=1)) / 5.5
    np.testing.assert_allclose(dense[:, 0], ref, atol=1e-12)
    # empty down == up-only
    up_only = [IndexedSet("b", np.arange(10, 30))]
    np.testing.assert_allclose(run(A, up_only, gene_stats=stats), dense[:, 1:], atol=1e-12)


def test_errors_and_spec() -> None:
    with pytest.raises(UsageError, match="gene_stats"):
        run(np.ones((2, 2)), [IndexedSet("s", np.array([0]))])
    stats = GeneStats(np.zeros(2), np.ones(2), 2)
    with pytest.raises(UsageError, match="non-zero weight"):
        run(
            np.ones((2, 2)),
            [IndexedSet("s", np.array([0]), up_weights=np.zeros(1))],
            gene_stats=stats,
        )
    spec = get_method("mean")
    assert spec.needs_gene_stats and spec.accepts_weights and not spec.sample_independent


def _unmerged_case(dtype: type, op: int, seed: int = 3):
    """Raw CSR rows over 120 columns whose 8 duplicated groups (2-4 members spread among
    the singles) merge into fewer output columns, with the eager merge (float64 blocks, as
    a scoring run reads them): negative values, members not stored, zero groups, empty rows."""
    from sigscore.genes.merge_kernels import MergePlan, UnmergedRows, merge_columns

    rng = np.random.default_rng(seed)
    X = sp.random(300, 120, density=0.35, random_state=rng, format="csr", dtype=np.float64)
    X.data = rng.normal(0.0, 2.0, X.nnz) * 10.0 ** rng.uniform(-2, 2, X.nnz)
    X = sp.lil_matrix(X)
    X[::9] = 0.0  # empty rows
    keys = np.arange(120)
    pool = rng.permutation(120)
    for g in range(8):  # disjoint groups of 2-4 columns anywhere in the row
        members, pool = pool[: 2 + g % 3], pool[2 + g % 3 :]
        keys[members] = keys[members.min()]
        X[g + 1, members[0]], X[g + 1, members[1]] = 1.5, -1.5  # SUM/MEAN 0 in this row
    X = sp.csr_matrix(X, dtype=dtype)
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    codes = np.argsort(np.argsort(first))[codes]  # numbered by first appearance
    n_out = int(codes.max()) + 1
    plan = MergePlan.from_codes(codes, n_out, op)
    assert plan.group_code.size == 8
    return UnmergedRows(X, plan), merge_columns(X, plan, n_out, op, out_dtype=np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [0, 1, 2])  # MAX, SUM, MEAN
def test_linear_scores_of_unmerged_rows_equal_the_merged_rows(dtype: type, op: int) -> None:
    """Rows merged as the product reads them give the merged block's sums bit for bit
    (groups added at their output column's place among the singles)."""
    from sigscore.scoring.methods.mean import linear_scores

    raw, merged = _unmerged_case(dtype, op)
    rng = np.random.default_rng(4)
    n_out = merged.shape[1]
    C = sp.random(n_out, 6, density=0.3, random_state=rng, format="csr")
    C.data = rng.normal(0.0, 1.0, C.nnz) * 10.0 ** rng.uniform(-8, 8, C.nnz)
    C = C.tolil()
    C[raw.plan.group_code[:5], 0] = 1.0 / 3.0  # most groups in some set
    C = C.tocsc()
    want = linear_scores(merged, C)
    got = linear_scores(raw, C)
    assert np.array_equal(got, want)
    mask = np.ones(n_out)
    mask[raw.plan.group_code] = 0.0
    no_groups = sp.csr_matrix(merged.multiply(mask))
    assert not np.array_equal(got[:, 0], linear_scores(no_groups, C)[:, 0])  # groups count
    # a row whose columns are not in order is merged (and sorted) first
    rows = raw.rows.copy()
    lo, hi = rows.indptr[2], rows.indptr[3]
    rows.indices[lo:hi], rows.data[lo:hi] = rows.indices[lo:hi][::-1], rows.data[lo:hi][::-1]
    assert np.array_equal(linear_scores(type(raw)(rows, raw.plan), C), want)
    # the mean method takes such rows as they come
    sets = [
        IndexedSet("a", raw.plan.group_code[:3], np.array([0, 5])),
        IndexedSet("b", np.arange(9)),
    ]
    stats = _stats(merged.toarray())
    assert np.array_equal(run(raw, sets, gene_stats=stats), run(merged, sets, gene_stats=stats))
    assert get_method("mean").merges_in_kernel
