"""UCell: hand-computed cases, parity with pyUCell 0.8 on real cells, and properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _rank_properties import assert_rank_method_properties, problems
from _sc_support import indexed_sets
from sigscore.errors import UsageError
from sigscore.scoring.methods import get_method
from sigscore.scoring.methods._base import IndexedSet
from sigscore.scoring.methods.ucell import run


def test_parity_with_pyucell(cells) -> None:
    pyucell = pytest.importorskip("pyucell")
    adata, gene_sets = cells
    # a directional set: pyUCell's "gene-" suffix; compare before its clipping at 0 matters
    gene_sets = {**gene_sets, "UPDOWN": ["LYZ+", "S100A9+", "VIM-", "CD74-"]}
    ref_data = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyucell.compute_ucell_scores(
            ref_data, gene_sets, max_rank=1500, missing_genes="skip", n_jobs=1
        )
    sets = indexed_sets(adata, {k: v for k, v in gene_sets.items() if k != "UPDOWN"})
    pos = adata.var_names.get_indexer
    sets.append(IndexedSet("UPDOWN", pos(["LYZ", "S100A9"]), pos(["VIM", "CD74"])))
    ours = run(adata.X, sets, max_rank=1500)
    for j, s in enumerate(sets):
        ref = ref_data.obs[f"{s.name}_UCell"].to_numpy(dtype=float)
        # pyUCell clips directional scores at 0; compare where it did not clip
        keep = ref > 0 if s.name == "UPDOWN" else np.ones(ref.size, dtype=bool)
        r = np.corrcoef(ours[keep, j], ref[keep])[0, 1]
        assert r >= 0.999, f"{s.name}: Pearson {r:.6f} with pyUCell"
        # same scale: pyUCell's capped rank max_rank vs ours max_rank + 1 (near-affine)
        assert np.max(np.abs(ours[keep, j] - ref[keep])) < 0.1, s.name
    assert (ours[:, -1] < 0).any(), "directional scores are not clipped at 0"


def test_hand_computed_example() -> None:
    # one cell, 6 genes; values give descending ranks: g0=1, g1=2.5, g2=2.5, g3=4, zeros 5.5
    X = np.array([[9.0, 5.0, 5.0, 1.0, 0.0, 0.0]])
    s = IndexedSet("s", np.array([1, 3, 4]))
    # max_rank 4: ranks 2.5, 4, 5.5 -> capped 2.5, 4, 5; U = 11.5 - 6 = 5.5; 1 - 5.5/12
    np.testing.assert_allclose(run(X, [s], max_rank=4), [[1 - 5.5 / 12]])
    # max_rank larger than the gene count is reduced to 6: U = 2.5 + 4 + 5.5 - 6 = 6
    np.testing.assert_allclose(run(X, [s], max_rank=1500), [[1 - 6 / 18]])
    # up/down, weighted down part, not clipped
    d = IndexedSet("d", np.array([4]), np.array([0]))
    up = 1 - (5 - 1) / 4  # gene 4: rank 5.5 > 4 -> 5
    down = 1 - (1 - 1) / 4  # gene 0: rank 1
    np.testing.assert_allclose(run(X, [d], max_rank=4, w_neg=0.5), [[up - 0.5 * down]])


def test_spec_and_errors() -> None:
    spec = get_method("ucell")
    assert spec.rowwise and spec.sample_independent and spec.run is run
    with pytest.raises(UsageError, match="max_rank"):
        run(np.ones((1, 3)), [IndexedSet("s", np.array([0]))], max_rank=0)


# ---- properties -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(problems(lambda g: st.integers(2, g)))
def test_properties(problem) -> None:
    A, sets, max_rank = problem
    assert_rank_method_properties(lambda X, s: run(X, s, max_rank=max_rank), A, sets)
