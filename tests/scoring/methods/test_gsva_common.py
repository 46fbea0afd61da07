"""set_tie_counts (the dense set-gene rank kernel of ssGSEA and the GSVA walk) against a
brute-force count over every pair of values."""

from __future__ import annotations

import numpy as np
import pytest

from sigscore.scoring.methods import IndexedSet
from sigscore.scoring.methods._gsva_common import set_tie_counts
from sigscore.scoring.methods._ranks import set_layout


def _brute(X: np.ndarray, genes: np.ndarray):
    vals = X[:, genes]
    greater = (X[:, None, :] > vals[:, :, None]).sum(axis=2)
    equal = (X[:, None, :] == vals[:, :, None]).sum(axis=2)
    before = np.array(
        [[(X[r, :g] == X[r, g]).sum() for g in genes] for r in range(X.shape[0])]
    ).reshape(X.shape[0], genes.size)
    return greater, equal, before


@pytest.mark.parametrize(
    "kind", ["normal", "rounded", "infinities", "constant", "float32", "one_gene"]
)
def test_set_tie_counts_equal_brute_force(kind):
    rng = np.random.default_rng(abs(hash(kind)) % 2**32)
    for _ in range(8):
        n = int(rng.integers(2, 250))
        X = rng.normal(size=(int(rng.integers(1, 12)), n))
        if kind == "rounded":  # many ties, inside and outside the sets
            X = np.round(X, 1)
        elif kind == "infinities":  # GSVA log-odds of the ECDF/Poisson kernels reach ±inf
            X[rng.random(X.shape) < 0.1] = np.inf
            X[rng.random(X.shape) < 0.1] = -np.inf
        elif kind == "constant":
            X[:] = 3.0
        elif kind == "float32":
            X = X.astype(np.float32)
        k = 1 if kind == "one_gene" else int(rng.integers(1, n + 1))
        sets = [IndexedSet(f"s{i}", rng.choice(n, k, replace=False)) for i in range(3)]
        layout = set_layout(sets, n)
        want = _brute(X, layout.genes)
        got = set_tie_counts(X, layout, ordinal=True)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        got_plain = set_tie_counts(X, layout)
        np.testing.assert_array_equal(got_plain[0], want[0])
        np.testing.assert_array_equal(got_plain[1], want[1])
