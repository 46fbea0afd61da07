"""Rank kernel: tie counts and ordinal ranks against scipy.stats.rankdata on dense rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

from sigscore.errors import InputError
from sigscore.scoring.methods._base import IndexedSet
from sigscore.scoring.methods._ranks import (
    as_csr,
    average_rank_desc,
    ordinal_ranks,
    set_layout,
    tie_counts,
    tie_counts_dense,
)

matrices = st.integers(1, 6).flatmap(
    lambda n: st.integers(1, 25).flatmap(
        lambda g: arrays(
            np.float64, (n, g), elements=st.sampled_from([-1.5, 0.0, 0.0, 1.0, 2.0, 3.5])
        )
    )
)


def _layout(A: np.ndarray, data) -> tuple:
    g = A.shape[1]
    genes = data.draw(st.lists(st.integers(0, g - 1), min_size=1, unique=True))
    return set_layout([IndexedSet("s", np.array(sorted(genes)))], g)


@settings(max_examples=60, deadline=None)
@given(A=matrices, data=st.data())
def test_tie_counts_match_rankdata(A: np.ndarray, data) -> None:
    layout = _layout(A, data)
    greater, equal = tie_counts(as_csr(A), layout)
    avg = np.vstack([rankdata(-row, method="average") for row in A])[:, layout.genes]
    rmin = np.vstack([rankdata(row, method="min") for row in A])[:, layout.genes]
    np.testing.assert_allclose(average_rank_desc(greater, equal), avg)
    np.testing.assert_array_equal(A.shape[1] - greater - equal + 1, rmin)


@settings(max_examples=60, deadline=None)
@given(A=matrices, data=st.data())
def test_ordinal_ranks_match_rankdata(A: np.ndarray, data) -> None:
    layout = _layout(A, data)
    ordinal = ordinal_ranks(as_csr(A), layout)
    ref = np.vstack([rankdata(-row, method="ordinal") for row in A])[:, layout.genes]
    np.testing.assert_array_equal(ordinal, ref)


def test_explicit_zeros_and_unsorted_indices_are_handled() -> None:
    # row 0: stored zero at column 1, columns given out of order and one duplicate entry
    rows = np.array([0, 0, 0, 0, 1])
    cols = np.array([3, 1, 0, 3, 2])
    vals = np.array([1.0, 0.0, 2.0, 1.0, -1.0])  # (0, 3) sums to 2.0
    M = sp.coo_matrix((vals, (rows, cols)), shape=(2, 5)).tocsr()
    M.data[M.data == 0] = 0.0
    dense = M.toarray()
    layout = set_layout([IndexedSet("s", np.arange(5))], 5)
    greater, equal = tie_counts(as_csr(M), layout)
    ref = np.vstack([rankdata(-row, method="average") for row in dense])
    np.testing.assert_allclose(average_rank_desc(greater, equal), ref)


def test_dense_and_sparse_inputs_agree() -> None:
    rng = np.random.default_rng(3)
    A = rng.poisson(0.7, size=(20, 40)).astype(float)
    layout = set_layout([IndexedSet("s", np.arange(0, 40, 3))], 40)
    for a, b in zip(
        tie_counts(as_csr(A), layout), tie_counts(as_csr(sp.csr_matrix(A)), layout), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_non_finite_values_are_reported_with_position() -> None:
    A = np.zeros((3, 4))
    A[2, 1] = np.nan
    with pytest.raises(InputError, match="row 2, column 1"):
        as_csr(A)


def test_out_of_range_positions_are_rejected() -> None:
    with pytest.raises(InputError, match="out of range"):
        set_layout([IndexedSet("s", np.array([0, 7]))], 5)


@settings(max_examples=60, deadline=None)
@given(A=matrices, data=st.data())
def test_dense_kernel_matches_rankdata(A: np.ndarray, data) -> None:
    """The dense-row kernel (binning into the sorted set values) gives rankdata's ranks,
    for float64 and float32 rows alike."""
    layout = _layout(A, data)
    avg = np.vstack([rankdata(-row, method="average") for row in A])[:, layout.genes]
    ordinal = np.vstack([rankdata(-row, method="ordinal") for row in A])[:, layout.genes]
    for values in (A, A.astype(np.float32)):
        greater, equal, before = tie_counts_dense(values, layout, ordinal=True)
        np.testing.assert_allclose(average_rank_desc(greater, equal), avg)
        np.testing.assert_array_equal(greater + before + 1, ordinal)
