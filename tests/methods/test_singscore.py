"""singscore: hand-computed examples from the paper's definitions, dispersion, properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sigscore.errors import UsageError
from sigscore.methods import get_method
from sigscore.methods._base import IndexedSet
from sigscore.methods.singscore import run, singscore_dispersion


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

counts = st.integers(1, 5).flatmap(
    lambda n: st.integers(4, 20).flatmap(
        lambda g: arrays(
            np.float64, (n, g), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0, 7.0])
        )
    )
)


@st.composite
def problems(draw):
    A = draw(counts)
    g = A.shape[1]
    n_sets = draw(st.integers(1, 3))
    sets = []
    for i in range(n_sets):
        genes = draw(st.lists(st.integers(0, g - 1), min_size=2, max_size=g, unique=True))
        cut = draw(st.integers(1, len(genes)))
        sets.append(
            IndexedSet(
                f"s{i}",
                np.array(sorted(genes[:cut])),
                np.array(sorted(genes[cut:]), dtype=np.int64),
            )
        )
    return A, sets, draw(st.sampled_from(["average", "min"]))


@settings(max_examples=40, deadline=None)
@given(problems())
def test_properties(problem) -> None:
    A, sets, ties = problem
    base = run(A, sets, ties=ties)
    # strictly monotone transform keeping zeros at zero
    np.testing.assert_allclose(run(np.log1p(A) * 3, sets, ties=ties), base, atol=1e-12)
    # sparse == dense
    np.testing.assert_allclose(run(sp.csr_matrix(A), sets, ties=ties), base, atol=1e-12)
    # gene permutation
    perm = np.random.default_rng(0).permutation(A.shape[1])
    inv = np.argsort(perm)
    moved = [IndexedSet(s.name, np.sort(inv[s.up]), np.sort(inv[s.down])) for s in sets]
    np.testing.assert_allclose(run(A[:, perm], moved, ties=ties), base, atol=1e-12)
    # set order
    np.testing.assert_allclose(run(A, sets[::-1], ties=ties), base[:, ::-1], atol=1e-12)
    # a row alone == in the batch
    np.testing.assert_allclose(run(A[-1:], sets, ties=ties), base[-1:], atol=1e-12)
    # empty down set == up-only
    up_only = [IndexedSet(s.name, s.up) for s in sets]
    with_empty = [IndexedSet(s.name, s.up, np.zeros(0, dtype=np.int64)) for s in sets]
    np.testing.assert_allclose(run(A, with_empty, ties=ties), run(A, up_only, ties=ties))
