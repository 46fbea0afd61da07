"""gsva kcdf="fast": the binned/FFT kernel CDF against the exact sums, within its stated bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from sigscore.errors import UsageError
from sigscore.scoring.methods import IndexedSet, get_method, gsva
from sigscore.scoring.methods import _gsva_kcdf as kcdf


def _exact_shifted(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """p_D(x_j) = (1/m) Σ_i D((x_j - x_i)/h), every pair, per gene (the fast kernel's target)."""
    return np.stack(
        [
            kcdf.shifted_kernel((c[:, None] - c[None, :]) / hg).mean(axis=1)
            for c, hg in zip(X.T, h, strict=True)
        ],
        axis=1,
    )


def _bound(X: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The documented bound: c²/(4√(2πe)) + 2δφ(0)·N_j/m, N_j the samples with
    0 < |x_i - x_j| < (2c + δ)·h (where the kinks of D at ±δ are within reach)."""
    m = X.shape[0]
    radius = (2 * kcdf.FAST_STEP + kcdf.FAST_SHIFT) * h
    near = np.stack(
        [
            ((g > 0) & (g < r)).sum(axis=1)
            for g, r in ((np.abs(c[:, None] - c), r) for c, r in zip(X.T, radius, strict=True))
        ],
        axis=1,
    )
    grid = kcdf.FAST_STEP**2 / (4 * math.sqrt(2 * math.pi * math.e))
    return grid + 2 * kcdf.FAST_SHIFT / math.sqrt(2 * math.pi) * near / m


def _data(m: int = 1500, genes: int = 24) -> np.ndarray:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(m, genes)) * rng.uniform(0.05, 20.0, genes) + rng.normal(0, 5, genes)
    X[:, 0:4] = np.round(X[:, 0:4])  # heavy ties
    X[: m // 3, 4:6] = 0.0  # a third of the samples tied at zero
    X[::97, 6:8] += 8.0 * X[:, 6:8].std(axis=0)  # outliers that keep the grid short
    X[0, 8:10] += 400.0 * X[:, 8:10].std(axis=0)  # an extreme outlier: exact is cheaper
    X[:, 10] = rng.standard_t(2, size=m)  # heavy tails
    return X


def test_grid_cdf_within_stated_bound():
    X = _data()
    sd = X.std(axis=0, ddof=1)
    h = sd / 4.0
    grid = kcdf.fast_grid(X, h)
    assert grid.fast.sum() >= 20 and (~grid.fast).sum() >= 2  # both paths exercised
    p_fast = 1.0 / (1.0 + np.exp(-gsva.logodds(X, sd, "fast", False)))
    err = np.abs(p_fast - _exact_shifted(X, h))
    bound = _bound(X, h)
    fast = grid.fast
    assert np.all(err[:, fast] <= bound[:, fast] + 1e-12)
    # the grid part of the bound is what it claims, and it is not vacuous here
    assert kcdf.FAST_STEP**2 / (4 * math.sqrt(2 * math.pi * math.e)) == pytest.approx(kcdf.FAST_TOL)
    assert err[:, fast].max() > 1e-8
    # genes that fall back take the default's (R's) table kernel exactly
    np.testing.assert_array_equal(
        gsva.logodds(X[:, ~fast], sd[~fast], "fast", False),
        gsva.logodds(X[:, ~fast], sd[~fast], "gaussian", False),
    )
    # and the shifted kernel is R's table kernel to within δ·φ(0) per pair
    table = gsva.logodds(X, sd, "gaussian", False)
    p_table = 1.0 / (1.0 + np.exp(-table))
    assert np.max(np.abs(p_table - _exact_shifted(X, h))) <= kcdf.FAST_SHIFT * 0.3990


def test_float32_sparse_and_blocks_agree():
    X = _data(m=1200, genes=12)
    sd = X.std(axis=0, ddof=1)
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(
        gsva.logodds(X32, sd, "fast", False),
        gsva.logodds(X32.astype(np.float64), sd, "fast", False),
    )
    dense = gsva.logodds(X, sd, "fast", False)
    np.testing.assert_allclose(
        gsva.logodds(sp.csc_matrix(X), sd, "fast", False), dense, rtol=0, atol=1e-9
    )
    # a gene's result does not depend on the genes batched with it
    np.testing.assert_allclose(
        gsva.logodds(X[:, 3:5], sd[3:5], "fast", False), dense[:, 3:5], rtol=0, atol=1e-9
    )


def test_scores_close_to_default_and_constant_genes():
    """Scores depend on d only through each sample's gene order. The grid's p differs from
    R's table kernel by that table's truncation noise (~1e-5), which can move a set gene by a
    place or two among genes whose d are that close (1/(n - k) each, 8e-4 here at k = 200,
    5e-5 among 20k genes): most scores are identical, a few are a place or two off."""
    rng = np.random.default_rng(3)
    m, n = 1000, 1500
    X = rng.normal(size=(m, 5)) @ rng.normal(size=(5, n)) + rng.normal(size=(m, n))
    X[:, 7] = 2.5  # a constant gene: dropped, as by the default
    sets = [IndexedSet(f"s{k}", rng.choice(n, k, replace=False)) for k in (10, 50, 200)]
    sets.append(IndexedSet("with_const", np.array([7, 1, 2, 3, 4])))
    fast = gsva.run(X, sets, kcdf="fast")
    default = gsva.run(X, sets)
    diff = np.abs(fast - default)
    sizes = np.array([10, 50, 200, 4])
    assert np.all(diff.max(axis=0) <= 3.0 / (n - sizes))
    assert np.quantile(diff, 0.99) <= 1e-4
    keep = np.ones(n, bool)
    keep[7] = False
    assert kcdf.fast_grid(X[:, keep], X[:, keep].std(axis=0, ddof=1) / 4).fast.all()


def test_parameters():
    data = _data(m=50, genes=30)
    sets = [IndexedSet("s", np.arange(10))]
    assert get_method("gsva").params(kcdf="fast")["kcdf"] == "fast"
    with pytest.raises(UsageError, match="r_compat"):
        gsva.run(data, sets, kcdf="fast", r_compat=True)
    # few samples: every gene takes the exact kernel, so the scores are the default's
    np.testing.assert_array_equal(gsva.run(data, sets, kcdf="fast"), gsva.run(data, sets))
