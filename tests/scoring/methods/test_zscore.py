"""zscore: parity with R GSVA 1.46, reference statistics, weights and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _r_gsva import index_sets, max_abs_diff, random_sets, tcga_and_synthetic_case
from sigscore.scoring.methods import GeneStats, IndexedSet, zscore

pytestmark = pytest.mark.r


def _random() -> pd.DataFrame:
    rng = np.random.default_rng(17)
    values = rng.integers(0, 30, size=(25, 300)).astype(float)
    values[:, 5] = 3.0  # constant: dropped by GSVA and by us
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(25)], columns=[f"G{j}" for j in range(300)]
    )


def r_case():
    """Matrices, set groups and R jobs for the ``r_results`` fixture (conftest.py)."""
    rand = _random()
    rsets = random_sets(rand.columns, [4, 20, 75], np.random.default_rng(3))
    rsets["SET_CONST"] = ["G5", *rsets["SET0"]]
    return tcga_and_synthetic_case("zscore", rand, rsets)


@pytest.mark.parametrize("key,sets_key", [("tcga", "hallmark"), ("rand", "rsets")])
def test_parity(r_results, key, sets_key):
    data = r_results[key]
    sets = index_sets(data.columns, r_results[sets_key])
    ours = zscore.run(data.to_numpy(), sets)
    assert max_abs_diff(ours, r_results["r"][key], data, sets) <= 1e-6


def test_hand_computed_and_weights():
    X = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 1.0], [5.0, 8.0, 2.0]])
    # gene 0: mean 3, sd 2 → z = -1, 0, 1; gene 1: mean 4, sd √12 → z = (-2, -2, 4)/√12
    z0 = np.array([-1.0, 0.0, 1.0])
    z1 = np.array([-2.0, -2.0, 4.0]) / np.sqrt(12.0)
    got = zscore.run(X, [IndexedSet("s", np.array([0, 1]))])[:, 0]
    np.testing.assert_allclose(got, (z0 + z1) / np.sqrt(2.0))
    w = np.array([2.0, -1.0])
    got_w = zscore.run(X, [IndexedSet("s", np.array([0, 1]), up_weights=w)])[:, 0]
    np.testing.assert_allclose(got_w, (2 * z0 - z1) / np.sqrt(5.0))


def test_reference_gene_stats_make_it_rowwise(r_results):
    data = r_results["tcga"].to_numpy()
    sets = index_sets(r_results["tcga"].columns, r_results["hallmark"])[:8]
    stats = GeneStats(mean=data.mean(axis=0), var=data.var(axis=0, ddof=1), n_obs=data.shape[0])
    batch = zscore.run(data, sets, gene_stats=stats)
    np.testing.assert_allclose(batch, zscore.run(data, sets), atol=1e-12)  # same stats
    for i in (0, 9):
        np.testing.assert_allclose(
            zscore.run(data[i : i + 1], sets, gene_stats=stats)[0], batch[i], atol=1e-12
        )


def test_constant_genes_leave_the_set():
    data = _random().to_numpy()
    with_const = zscore.run(data, [IndexedSet("s", np.array([5, 7, 9]))])[:, 0]
    without = zscore.run(data, [IndexedSet("s", np.array([7, 9]))])[:, 0]
    np.testing.assert_allclose(with_const, without)
    assert np.isnan(zscore.run(data, [IndexedSet("c", np.array([5]))])).all()
