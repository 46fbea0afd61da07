"""run_method over a matrix whose duplicated genes are merged as it is read (issue 15).

Harmonising TCGA-style names merges a few columns; the merge is deferred to the scoring loop
(row blocks) or, for methods that read only the sets' columns, to those columns. Every
method must give bit-identical scores to scoring the eagerly merged matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sigscore.io.expression import as_expression
from sigscore.io.sources import MergedSource
from sigscore.scoring import gene_stats, harmonise_columns, run_method
from sigscore.scoring.methods import METHOD_NAMES, IndexedSet, get_method

# duplicated exact names merge; zzq3 appears three times and is also a set member
GENES = ["STAT3", "SOCS3", "STAT3", "JAK2", "IL6ST", "VIM", "IL6ST", "CDH1", "KRT19"]
GENES += [f"zzq{i}" for i in range(40)] + ["zzq3", "SOCS3", "zzq3"]
SET_NAMES = [
    ["STAT3", "SOCS3", "JAK2", "IL6ST", "zzq3"],
    ["VIM", "zzq1", "zzq7"],
    ["CDH1", "KRT19"],
]


def _matrix(kind: str, counts: bool) -> object:
    rng = np.random.default_rng(11)
    dense = rng.gamma(1.5, 2.0, size=(37, len(GENES)))
    dense[rng.random(dense.shape) < 0.4] = 0.0  # implicit zeros in the sparse form
    dense = np.round(dense * 3) if counts else np.log1p(dense) * 1.37
    if kind == "csr32":
        return sp.csr_matrix(dense.astype(np.float32))
    return np.asfortranarray(dense) if kind == "fortran" else np.ascontiguousarray(dense)


def _sets(names: pd.Index) -> list[IndexedSet]:
    column = {n: i for i, n in enumerate(names)}
    out = []
    for i, members in enumerate(SET_NAMES):
        up = np.array([column[g] for g in members], dtype=np.int64)
        down = np.array([column["zzq20"], column["zzq21"]]) if i == 0 else np.zeros(0, np.int64)
        out.append(IndexedSet(f"s{i}", up=up, down=down))
    return out


def _params(method: str) -> dict:
    extra = {"ucell": {"max_rank": 30}, "aucell": {"max_rank": 12}}.get(method, {})
    return get_method(method).params(**extra)


@pytest.mark.parametrize("counts", [False, True], ids=["log-max", "counts-sum"])
@pytest.mark.parametrize("kind", ["csr32", "dense", "fortran"])
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_deferred_merge_scores_equal_the_merged_matrix(method: str, kind: str, counts: bool):
    expr = as_expression(_matrix(kind, counts), var_names=GENES)
    eager, _, _ = harmonise_columns(expr)
    deferred, _, _ = harmonise_columns(expr, defer_merge=True)
    assert isinstance(deferred.X, MergedSource) and not deferred.is_lazy
    assert list(deferred.var_names) == list(eager.var_names)
    assert deferred.notes == eager.notes
    sets = _sets(eager.var_names)
    spec, params = get_method(method), _params(method)
    for chunk in (None, 5):
        want = run_method(eager.X, sets, spec, params, chunk_size=chunk)
        got = run_method(deferred.X, sets, spec, params, chunk_size=chunk)
        np.testing.assert_array_equal(got, want)
    if spec.needs_gene_stats or spec.rowwise_with_stats:  # fixed reference statistics
        stats = gene_stats(eager.X)
        want = run_method(eager.X, sets, spec, params, stats=stats, chunk_size=4)
        got = run_method(deferred.X, sets, spec, params, stats=stats, chunk_size=4)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "method", [m for m in METHOD_NAMES if get_method(m).reads_set_columns_only]
)
def test_reads_set_columns_only_is_truthful(method: str):
    """A flagged method's scores do not move when every other column changes."""
    rng = np.random.default_rng(5)
    X = rng.normal(2.0, 1.0, size=(25, 60))
    sets = [
        IndexedSet("a", up=np.array([3, 17, 8, 40])),
        IndexedSet("b", up=np.array([5, 6]), down=np.array([50, 2])),
    ]
    in_sets = np.zeros(X.shape[1], dtype=bool)
    in_sets[np.concatenate([s.all_genes for s in sets])] = True
    other = X.copy()
    other[:, ~in_sets] = rng.normal(-5.0, 9.0, size=(X.shape[0], int((~in_sets).sum())))
    spec = get_method(method)
    np.testing.assert_array_equal(
        run_method(other, sets, spec, _params(method)), run_method(X, sets, spec, _params(method))
    )


def test_methods_that_read_every_gene_are_not_flagged():
    # rank methods rank all genes; module_score bins them; mean multiplies all columns
    for name in ("ucell", "aucell", "singscore", "ssgsea", "gsva", "module_score", "mean"):
        assert not get_method(name).reads_set_columns_only
