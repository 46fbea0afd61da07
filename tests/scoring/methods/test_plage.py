"""plage: parity with R GSVA 1.46 (up to sign), the sign convention and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _r_gsva import index_sets, random_sets, tcga_and_synthetic_case
from sigscore.scoring.methods import IndexedSet, plage

pytestmark = pytest.mark.r


def _random() -> pd.DataFrame:
    rng = np.random.default_rng(23)
    factor = rng.normal(size=(30, 1))
    values = factor @ rng.normal(size=(1, 250)) + rng.normal(size=(30, 250))
    values = np.round(values, 1)  # some ties
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(30)], columns=[f"G{j}" for j in range(250)]
    )


def r_case():
    """Matrices, set groups and R jobs for the ``r_results`` fixture (conftest.py)."""
    rand = _random()
    rsets = random_sets(rand.columns, [3, 25, 80], np.random.default_rng(5))
    return tcga_and_synthetic_case("plage", rand, rsets)


@pytest.mark.parametrize("key,sets_key", [("tcga", "hallmark"), ("rand", "rsets")])
def test_parity_up_to_sign(r_results, key, sets_key):
    data = r_results[key]
    sets = index_sets(data.columns, r_results[sets_key])
    ours = plage.run(data.to_numpy(), sets)
    ref = r_results["r"][key].loc[data.index, [s.name for s in sets]].to_numpy()
    sign = np.sign(np.sum(ours * ref, axis=0))  # one sign per set (column)
    assert float(np.max(np.abs(ours - sign * ref))) <= 1e-6


def test_sign_follows_the_set_mean():
    data = _random().to_numpy()
    z = (data - data.mean(axis=0)) / data.std(axis=0, ddof=1)
    sets = [IndexedSet(f"s{k}", np.arange(k, 3 * k)) for k in (2, 10, 40)]
    scores = plage.run(data, sets)
    for j, s in enumerate(sets):
        assert np.corrcoef(scores[:, j], z[:, s.up].mean(axis=1))[0, 1] > 0
        np.testing.assert_allclose(np.linalg.norm(scores[:, j]), 1.0)
    # flipping every gene of a set flips its score (it follows the genes' direction)
    np.testing.assert_allclose(plage.run(-data, sets), -scores, atol=1e-12)
