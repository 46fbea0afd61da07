"""matrix.py: input conversion, finite checks, duplicate-gene merge rules (hand-computed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sigscore.errors import InputError, UsageError
from sigscore.io.expression import as_expression, detect_value_scale, merge_duplicate_genes

FRAME = pd.DataFrame(
    [[1.5, 2.0, 3.5, 0.0], [4.5, 5.0, 0.5, 1.0], [0.25, 1.0, 2.0, 7.0]],
    columns=["A", "B", "A", "A"],
    index=["s1", "s2", "s3"],
)
EXPECTED_A = {
    "max": [3.5, 4.5, 7.0],
    "mean": [5.0 / 3, 6.0 / 3, 9.25 / 3],
    "sum": [5.0, 6.0, 9.25],
    "max_mean": [0.0, 1.0, 7.0],  # means: 6.25/3, 2.0, 8/3 → the last "A" column wins
}


@pytest.mark.parametrize("rule", sorted(EXPECTED_A))
@pytest.mark.parametrize("sparse", [False, True])
def test_merge_rules(rule, sparse):
    expr = as_expression(
        sp.csr_matrix(FRAME.to_numpy()) if sparse else FRAME, var_names=FRAME.columns
    )
    merged, groups = merge_duplicate_genes(expr, list(expr.var_names), rule)
    X = merged.X.toarray() if sparse else merged.X
    assert sp.issparse(merged.X) == sparse
    assert list(merged.var_names) == ["A", "B"]
    np.testing.assert_allclose(X[:, 0], EXPECTED_A[rule])
    np.testing.assert_allclose(X[:, 1], FRAME["B"].to_numpy())
    assert groups == {"A": ["A", "A", "A"]}


def test_auto_rule_is_per_sample_so_a_sample_merges_the_same_alone():
    expr = as_expression(FRAME)
    batch, _ = merge_duplicate_genes(expr, list(expr.var_names))
    alone, _ = merge_duplicate_genes(as_expression(FRAME.iloc[[2]]), list(FRAME.columns))
    np.testing.assert_array_equal(alone.X[0], batch.X[2])
    counts = as_expression(FRAME.round().astype(int) + 1)
    summed, _ = merge_duplicate_genes(counts, list(counts.var_names))
    assert "merged 1 duplicated gene(s) by sum" in summed.notes


def test_unknown_rule():
    with pytest.raises(UsageError, match="unknown duplicate rule"):
        merge_duplicate_genes(as_expression(FRAME), list(FRAME.columns), "median")


def test_value_scale_detection():
    rng = np.random.default_rng(0)
    assert detect_value_scale(rng.poisson(3, (20, 30)).astype(float)) == "counts"
    assert detect_value_scale(np.log2(rng.gamma(2, 50, (20, 30)) + 1)) == "log"
    assert detect_value_scale(rng.gamma(2, 500, (20, 30))) == "linear"
    assert detect_value_scale(rng.standard_normal((20, 30))) == "zscore"


def test_mismatched_names_and_non_numeric_frames():
    with pytest.raises(InputError, match="2 observation names"):
        as_expression(np.zeros((3, 2)), var_names=["a", "b"], obs_names=["x", "y"])
    with pytest.raises(InputError, match="not numeric"):
        as_expression(pd.DataFrame({"gene": ["a", "b"], "v": [1.0, 2.0]}))
