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
