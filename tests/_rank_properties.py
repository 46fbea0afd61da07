"""Shared property checks for the per-cell rank methods (AUCell, UCell, singscore).

A rank method scores each row from the ranks of its own values only, so its scores must be
unchanged by a strictly monotone transform that keeps zeros at zero, by storage (sparse or
dense), by permuting genes (with the sets moved along), by the order of the sets (columns
follow), by scoring a row alone rather than in a batch, and by an explicitly empty down set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sigscore.scoring.methods._base import IndexedSet

# small count-like matrices with many zeros and ties: 1-5 rows × 4-20 genes
counts = st.integers(1, 5).flatmap(
    lambda n: st.integers(4, 20).flatmap(
        lambda g: arrays(
            np.float64, (n, g), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.0, 7.0])
        )
    )
)


@st.composite
def problems(draw, extra: Callable[[int], st.SearchStrategy]):
    """A matrix, 1-3 up/down sets over its genes, and a method parameter drawn by
    ``extra(n_genes)`` (e.g. a rank cap or a ties rule)."""
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
    return A, sets, draw(extra(g))


def assert_rank_method_properties(
    score: Callable[..., np.ndarray], A: np.ndarray, sets: Sequence[IndexedSet]
) -> None:
    """Check the invariances above for ``score(X, sets) -> cells × sets``."""
    base = score(A, sets)
    # strictly monotone transform keeping zeros at zero
    np.testing.assert_allclose(score(np.log1p(A) * 3, sets), base, atol=1e-12)
    # sparse == dense
    np.testing.assert_allclose(score(sp.csr_matrix(A), sets), base, atol=1e-12)
    # gene permutation
    perm = np.random.default_rng(0).permutation(A.shape[1])
    inv = np.argsort(perm)
    moved = [IndexedSet(s.name, np.sort(inv[s.up]), np.sort(inv[s.down])) for s in sets]
    np.testing.assert_allclose(score(A[:, perm], moved), base, atol=1e-12)
    # set order
    np.testing.assert_allclose(score(A, sets[::-1]), base[:, ::-1], atol=1e-12)
    # a row alone == in the batch
    np.testing.assert_allclose(score(A[-1:], sets), base[-1:], atol=1e-12)
    # empty down set == up-only
    up_only = [IndexedSet(s.name, s.up) for s in sets]
    with_empty = [IndexedSet(s.name, s.up, np.zeros(0, dtype=np.int64)) for s in sets]
    np.testing.assert_allclose(score(A, with_empty), score(A, up_only))
