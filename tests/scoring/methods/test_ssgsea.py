"""ssgsea: parity with R GSVA 1.46 and the properties the docstring claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata

from _r_gsva import index_sets, load_hallmark, load_tcga_log2, max_abs_diff, random_sets
from sigscore.scoring.methods import IndexedSet, get_method, ssgsea

RNG_SEED = 20240503


def _ties_matrix() -> pd.DataFrame:
    """24 samples × 400 genes of small integers: many tied ranks, incl. .5 averages."""
    rng = np.random.default_rng(RNG_SEED)
    values = rng.integers(0, 12, size=(24, 400)).astype(float)
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(24)], columns=[f"G{j}" for j in range(400)]
    )


def _score(X, sets, **params) -> np.ndarray:
    spec = get_method("ssgsea")
    p = spec.params(**params)
    return spec.finalize(spec.run(X, sets, **p), **p)


def r_case():
    """Matrices, set groups and R jobs for the ``r_results`` fixture (conftest.py)."""
    tcga, hallmark, ties = load_tcga_log2(), load_hallmark(), _ties_matrix()
    rsets = random_sets(ties.columns, [5, 12, 30, 60, 150], np.random.default_rng(1))
    jobs = {
        "tcga": {"matrix": "tcga", "method": "ssgsea"},
        "ties": {"matrix": "ties", "method": "ssgsea"},
        "ties_raw": {"matrix": "ties", "method": "ssgsea", "ssgsea_norm": False},
    }
    return {"tcga": tcga, "ties": ties}, {"hallmark": hallmark, "rsets": rsets}, jobs


def test_parity_tcga_hallmark(r_results):
    data, hallmark = r_results["tcga"], r_results["hallmark"]
    sets = index_sets(data.columns, hallmark)
    ours = _score(data.to_numpy(), sets, r_compat=True, normalize=True)
    assert max_abs_diff(ours, r_results["r"]["tcga"], data, sets) <= 1e-6
    # the default (exact average ranks) differs here: TPM has many zeros, i.e. tied ranks
    default = _score(data.to_numpy(), sets, normalize=True)
    assert max_abs_diff(default, r_results["r"]["tcga"], data, sets) > 1e-6


@pytest.mark.parametrize("normalize,key", [(True, "ties"), (False, "ties_raw")])
def test_parity_integer_ties(r_results, normalize, key):
    data = r_results["ties"]
    sets = index_sets(data.columns, r_results["rsets"])
    ours = _score(data.to_numpy(), sets, r_compat=True, normalize=normalize)
    assert max_abs_diff(ours, r_results["r"][key], data, sets) <= 1e-6


def _walk_reference(x: np.ndarray, members: np.ndarray, alpha: float) -> float:
    """The running-sum definition, walked step by step in R's gene order (r_compat)."""
    n = x.size
    ranks = np.trunc(rankdata(x, method="average"))
    order = sorted(range(n), key=lambda g: (-ranks[g], g))  # decreasing, ties by input order
    in_set = np.zeros(n, dtype=bool)
    in_set[members] = True
    weights = ranks**alpha
    total_w = weights[in_set].sum()
    hit = miss = es = 0.0
    for g in order:
        if in_set[g]:
            hit += weights[g] / total_w
        else:
            miss += 1.0 / (n - in_set.sum())
        es += hit - miss
    return es


def test_closed_form_equals_explicit_walk():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 6, size=(5, 40)).astype(float)
    members = np.array([1, 4, 9, 17, 22, 31])
    ours = ssgsea.run(X, [IndexedSet("s", members)], r_compat=True)[:, 0]
    ref = [_walk_reference(row, members, 0.25) for row in X]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_default_equals_r_compat_without_ties():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(15, 300))
    sets = [IndexedSet(f"s{k}", np.sort(rng.choice(300, k, replace=False))) for k in (3, 20, 90)]
    np.testing.assert_allclose(ssgsea.run(X, sets), ssgsea.run(X, sets, r_compat=True), atol=1e-12)


def test_sparse_equals_dense():
    rng = np.random.default_rng(9)
    dense = rng.poisson(0.4, size=(30, 250)).astype(float)
    sets = [IndexedSet("a", np.arange(0, 40)), IndexedSet("b", np.arange(60, 200, 3))]
    for compat in (False, True):
        np.testing.assert_allclose(
            ssgsea.run(sp.csr_matrix(dense), sets, r_compat=compat),
            ssgsea.run(dense, sets, r_compat=compat),
            atol=1e-12,
        )


def test_normalisation_divides_by_batch_range():
    scores = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_allclose(ssgsea.finalize(scores, normalize=True), scores / 5.0)
    np.testing.assert_array_equal(ssgsea.finalize(scores, normalize=False), scores)
