"""singscore: hand-computed examples from the paper's definitions, dispersion, properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from _rank_properties import assert_rank_method_properties, problems
from sigscore.errors import UsageError
from sigscore.scoring.methods import get_method
from sigscore.scoring.methods._base import IndexedSet
from sigscore.scoring.methods.singscore import run, singscore_dispersion


def _paper_score(ranks: np.ndarray, up: list[int], down: list[int], center: bool = True) -> float:
    """Foroutan 2018: mean rank rescaled by its bounds (k+1)/2 and (2N-k+1)/2."""
    n = ranks.size

    def norm(genes: list[int]) -> float:
        k = len(genes)
        low, high = (k + 1) / 2, (2 * n - k + 1) / 2
        return (ranks[genes].mean() - low) / (high - low)

    shift = 0.5 if center else 0.0
    total = norm(up) - shift
    if down:
        total += (1 - norm(down)) - shift
    return total


def test_hand_computed_without_ties() -> None:
    X = np.array([[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]])  # ascending ranks 1..6
    top = IndexedSet("top", np.array([4, 5]))
    bottom = IndexedSet("bottom", np.array([0, 1]))
    both = IndexedSet("both", np.array([4, 5]), np.array([0, 1]))
    np.testing.assert_allclose(run(X, [top, bottom, both]), [[0.5, -0.5, 1.0]])
    np.testing.assert_allclose(run(X, [top, bottom, both], center=False), [[1.0, 0.0, 2.0]])
    mid = IndexedSet("mid", np.array([1, 4]))  # mean rank 3.5 = (1.5 + 5.5) / 2 -> 0.5
    np.testing.assert_allclose(run(X, [mid]), [[0.0]])


def test_hand_computed_with_ties_and_zeros() -> None:
    X = np.array([[1.0, 2.0, 2.0, 0.0, 0.0, 5.0]])
    # ascending average ranks: zeros 1.5, 1.0 -> 3, 2.0 -> 4.5, 5.0 -> 6
    avg = np.array([3.0, 4.5, 4.5, 1.5, 1.5, 6.0])
    mins = np.array([3.0, 4.0, 4.0, 1.0, 1.0, 6.0])  # R rankGenes() default "min"
    s = IndexedSet("s", np.array([1, 5]), np.array([3]))
    np.testing.assert_allclose(run(X, [s]), [[_paper_score(avg, [1, 5], [3])]])
    np.testing.assert_allclose(run(X, [s], ties="min"), [[_paper_score(mins, [1, 5], [3])]])
    assert run(X, [s])[0, 0] == pytest.approx((5.25 - 1.5) / 4 - 0.5 + 1 - (1.5 - 1) / 5 - 0.5)


def test_sparse_row_zero_block_in_closed_form() -> None:
    rng = np.random.default_rng(0)
    A = rng.poisson(0.3, size=(5, 300)).astype(float)
    up = [0, 5, 17, 42, 100, 299]
    down = [3, 8]
    for row, got in zip(
        A, run(sp.csr_matrix(A), [IndexedSet("s", np.array(up), np.array(down))]), strict=True
    ):
        from scipy.stats import rankdata

        assert got[0] == pytest.approx(_paper_score(rankdata(row), up, down), abs=1e-12)


def test_dispersion_is_mad_of_ranks() -> None:
    X = np.array([[1.0, 2.0, 2.0, 0.0, 0.0, 5.0]])
    up = IndexedSet("s", np.array([0, 1, 5]))  # ranks 3, 4.5, 6: median 4.5, MAD 1.5
    np.testing.assert_allclose(singscore_dispersion(X, [up]), [[1.4826 * 1.5]])
    both = IndexedSet("s", np.array([0, 1, 5]), np.array([3, 4, 0]))  # down ranks 1.5, 1.5, 3
    np.testing.assert_allclose(singscore_dispersion(X, [both]), [[1.4826 * 1.5 + 0.0]])


def test_spec_and_errors() -> None:
    spec = get_method("singscore")
    assert spec.rowwise and spec.sample_independent and spec.run is run
    with pytest.raises(UsageError, match="ties"):
        run(np.ones((1, 3)), [IndexedSet("s", np.array([0]))], ties="first")
    # a set covering every gene has no range: NaN, not a division error
    assert np.isnan(run(np.ones((1, 3)), [IndexedSet("s", np.arange(3))])[0, 0])


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(problems(lambda g: st.sampled_from(["average", "min"])))
def test_properties(problem) -> None:
    A, sets, ties = problem
    assert_rank_method_properties(lambda X, s: run(X, s, ties=ties), A, sets)
