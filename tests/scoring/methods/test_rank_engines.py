"""The numpy and numba rank engines give identical counts, ranks and rank sums.

Small inputs are counted with numpy so that a short run never imports numba
(:data:`sigscore.scoring.methods._ranks.SMALL_CELLS`); scores must not depend on which
engine ran. Checked on random matrices full of ties (negative values, stored and implicit
zeros), dense and sparse, float64 and float32, against each other and scipy's rankdata.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

from sigscore.errors import UsageError
from sigscore.scoring.methods import singscore
from sigscore.scoring.methods._base import IndexedSet
from sigscore.scoring.methods._ranks import (
    ASC_AVERAGE,
    ASC_MIN,
    AUCELL,
    AUCELL_ORDINAL,
    UCELL,
    as_csr,
    ordinal_ranks,
    segment_sums,
    set_layout,
    tie_counts,
    tie_counts_dense,
)

REPO = Path(__file__).resolve().parents[3]
TCGA = REPO.parent / "shared" / "data" / "tcga_lihc_tpm10" / "LIHC_TPM_10samples.tsv.gz"

tied = st.integers(1, 6).flatmap(
    lambda n: st.integers(2, 30).flatmap(
        lambda g: arrays(
            np.float64, (n, g), elements=st.sampled_from([-2.0, -0.0, 0.0, 0.0, 1.0, 1.0, 3.5])
        )
    )
)


@st.composite
def problems(draw):
    A = draw(tied)
    g = A.shape[1]
    sets = []
    for i in range(draw(st.integers(1, 3))):
        genes = draw(st.lists(st.integers(0, g - 1), min_size=1, max_size=g, unique=True))
        cut = draw(st.integers(0, len(genes)))
        sets.append(IndexedSet(f"s{i}", np.array(genes[:cut]), np.array(genes[cut:])))
    return A, sets


def _both(fn, *args, **kw):
    return fn(*args, engine="numpy", **kw), fn(*args, engine="numba", **kw)


@settings(max_examples=80, deadline=None)
@given(problem=problems(), cap=st.integers(1, 12), sparse=st.booleans())
def test_engines_identical_on_tied_data(problem, cap: int, sparse: bool) -> None:
    A, sets = problem
    M = as_csr(sp.csr_matrix(A) if sparse else A)
    layout = set_layout(sets, A.shape[1])
    for mode in (ASC_AVERAGE, ASC_MIN, UCELL):
        a, b = _both(segment_sums, M, layout, mode, float(cap))
        np.testing.assert_array_equal(a, b)  # bit-identical, not merely close
    (g1, e1), (g2, e2) = _both(tie_counts, M, layout)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(e1, e2)
    o1, o2 = _both(ordinal_ranks, M, layout)
    np.testing.assert_array_equal(o1, o2)
    ref = np.vstack([rankdata(-row, method="ordinal") for row in A])[:, layout.genes]
    np.testing.assert_array_equal(o1, ref)
    asc = np.vstack([rankdata(row, method="average") for row in A])[:, layout.genes]
    np.testing.assert_array_equal(A.shape[1] + 1 - (g1 + (e1 + 1) / 2), asc)
    for values in (A, A.astype(np.float32)):
        for ordinal in (False, True):
            for x, y in zip(*_both(tie_counts_dense, values, layout, ordinal=ordinal), strict=True):
                np.testing.assert_array_equal(x, y)


def test_engines_identical_on_a_realistic_block() -> None:
    """Count-like rows of 2,000 genes (many zeros, long tie runs), 50 sets of 5-200 genes."""
    rng = np.random.default_rng(7)
    A = rng.negative_binomial(1, 0.3, size=(40, 2000)).astype(float)
    A[:5] = np.log1p(A[:5] * rng.uniform(0.5, 2.0, size=(5, 2000)))  # continuous rows too
    sets = [
        IndexedSet(
            f"s{i}", np.sort(rng.choice(2000, size=int(rng.integers(5, 200)), replace=False))
        )
        for i in range(50)
    ]
    layout = set_layout(sets, 2000)
    for M in (as_csr(A), as_csr(sp.csr_matrix(A))):
        for mode in (ASC_AVERAGE, ASC_MIN, UCELL):
            a, b = _both(segment_sums, M, layout, mode, 150.0)
            np.testing.assert_array_equal(a, b)


def test_auto_engine_gives_the_same_singscore(monkeypatch) -> None:
    """singscore through the default engine choice equals a forced numba run."""
    from sigscore.scoring.methods import _ranks

    rng = np.random.default_rng(11)
    A = rng.poisson(2.0, size=(12, 300)).astype(float)
    sets = [IndexedSet("a", np.arange(0, 300, 7), np.arange(3, 300, 11))]
    auto = [singscore.run(A, sets, ties=t) for t in ("average", "min")]
    monkeypatch.setattr(_ranks, "SMALL_CELLS", -1)  # every input counts as large: numba
    for t, expected in zip(("average", "min"), auto, strict=True):
        np.testing.assert_array_equal(singscore.run(A, sets, ties=t), expected)


def test_unknown_engine_is_a_usage_error() -> None:
    layout = set_layout([IndexedSet("s", np.array([0]))], 2)
    with pytest.raises(UsageError, match="engine"):
        tie_counts(as_csr(np.ones((1, 2))), layout, engine="gpu")


def test_a_small_run_never_imports_numba() -> None:
    """Scoring a 10-sample file with the default method (what ``sigscore score`` does in a
    fresh process) imports neither numba nor the text reader's polars fallback."""
    data = (
        TCGA
        if TCGA.exists()
        else REPO / "src" / "sigscore" / "data" / "example" / "expression.tsv.gz"
    )
    code = (
        "import sys, sigscore\n"
        f"s = sigscore.score({str(data)!r})\n"
        "assert s.shape[0] == 10 if 'LIHC' in " + repr(data.name) + " else s.shape[0] > 0\n"
        "print(sorted(m for m in ('numba', 'polars') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


# ---- float32 blocks, the rank-sum kernel's two count grids, the block scan ---------------


def _aucell_reference(M, layout, cap: float) -> np.ndarray:
    """AUCell's expected recovery per set part from the per-gene counts of ``tie_counts``
    (another kernel): a tie group over ranks a..b contributes mean_r (cap - r)^+."""
    greater, equal = tie_counts(M, layout, engine="numba")
    a = greater + 1.0
    top = np.minimum(greater + equal, cap - 1.0)
    c = top - a + 1.0
    val = np.where(a >= cap, 0.0, (c * cap - (a + top) * c / 2.0) / equal)
    segs = list(layout.up) + list(layout.down)
    return np.stack([val[:, s].sum(axis=1) for s in segs], axis=1)


def _mixed_rows(rng: np.random.Generator, n_genes: int) -> np.ndarray:
    """Count rows (a few distinct values: the linear count grid), continuous rows (hundreds
    of distinct values: the binary-search grid) and signed rows (negatives below zeros)."""
    A = rng.negative_binomial(1, 0.3, size=(30, n_genes)).astype(np.float32)
    A[:6] = np.log1p(A[:6] * rng.uniform(0.5, 2.0, size=(6, n_genes))).astype(np.float32)
    A[6:9] -= 2.0
    A[9, :] = 0.0  # an empty row
    return A


def test_rank_sums_match_the_per_gene_counts_on_both_grids() -> None:
    rng = np.random.default_rng(3)
    A = _mixed_rows(rng, 1500)
    sets = [
        IndexedSet(
            f"s{i}",
            np.sort(rng.choice(1500, size=int(rng.integers(5, 300)), replace=False)),
            np.sort(rng.choice(1500, size=int(rng.integers(0, 40)), replace=False)),
        )
        for i in range(12)
    ]
    layout = set_layout(sets, 1500)
    for X in (A, A.astype(np.float64), sp.csr_matrix(A)):
        M = as_csr(X)
        for cap in (2.0, 75.0, 1500.0):
            np.testing.assert_allclose(
                segment_sums(M, layout, AUCELL, cap), _aucell_reference(M, layout, cap),
                rtol=1e-12, atol=1e-9,
            )  # fmt: skip
        greater, equal = tie_counts(M, layout)
        rank = np.where(greater + (equal + 1.0) / 2.0 > 150.0, 151.0, greater + (equal + 1.0) / 2.0)
        expected = np.stack([rank[:, s].sum(axis=1) for s in [*layout.up, *layout.down]], axis=1)
        np.testing.assert_array_equal(segment_sums(M, layout, UCELL, 150.0, engine="numba"),
                                      expected)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(problem=problems(), cap=st.integers(2, 12), sparse=st.booleans())
def test_float32_blocks_give_the_float64_counts_and_sums(problem, cap: int, sparse: bool) -> None:
    """The tied values are exact in float32, so a float32 block must give bit-identical
    counts, ranks and sums in every mode (ties included), without being widened."""
    A, sets = problem
    A32 = A.astype(np.float32)
    M64 = as_csr(sp.csr_matrix(A) if sparse else A)
    M32 = as_csr(sp.csr_matrix(A32) if sparse else A32)
    assert M32.dtype == np.float32 and M64.dtype == np.float64
    layout = set_layout(sets, A.shape[1])
    for mode in (ASC_AVERAGE, ASC_MIN, UCELL, AUCELL, AUCELL_ORDINAL):
        np.testing.assert_array_equal(
            segment_sums(M32, layout, mode, float(cap), engine="numba"),
            segment_sums(M64, layout, mode, float(cap), engine="numba"),
        )
    for engine in ("numpy", "numba"):
        for x, y in zip(
            tie_counts(M32, layout, engine=engine), tie_counts(M64, layout, engine=engine),
            strict=True,
        ):  # fmt: skip
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(
            ordinal_ranks(M32, layout, engine=engine), ordinal_ranks(M64, layout, engine=engine)
        )


@pytest.mark.parametrize("numba_scan", [False, True])
def test_as_csr_checks_values_and_order(monkeypatch, numba_scan: bool) -> None:
    """Both scans (numpy for small inputs, numba otherwise) name the first non-finite value
    and canonicalise unsorted or duplicated columns; a canonical float CSR is not copied."""
    from sigscore.errors import InputError
    from sigscore.scoring.methods import _ranks

    if numba_scan:
        monkeypatch.setattr(_ranks, "SMALL_CELLS", -1)
    rng = np.random.default_rng(5)
    A = rng.poisson(1.0, size=(200, 50)).astype(np.float32)
    M = sp.csr_matrix(A)
    assert as_csr(M) is M
    bad = M.copy()
    row, k = 137, int(bad.indptr[137]) + 1
    bad.data[k] = np.inf
    with pytest.raises(InputError, match=f"row {row}, column {bad.indices[k]}"):
        as_csr(bad)
    bad.data[k] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        as_csr(bad)
    # row 3's entries reversed and one column stored twice (its value split in halves)
    lo, hi = M.indptr[3], M.indptr[4]
    data, idx = M.data.copy(), M.indices.copy()
    data[lo:hi], idx[lo:hi] = data[lo:hi][::-1], idx[lo:hi][::-1]
    data = np.insert(data, lo, data[lo] / 2)
    data[lo + 1] /= 2
    idx = np.insert(idx, lo, idx[lo])
    indptr = M.indptr.copy()
    indptr[4:] += 1
    messy = sp.csr_matrix((data, idx, indptr), shape=M.shape)
    fixed = as_csr(messy)
    assert fixed.has_canonical_format and fixed is not messy
    np.testing.assert_array_equal(fixed.toarray(), A)
    layout = set_layout([IndexedSet("s", np.arange(0, 50, 3))], 50)
    np.testing.assert_array_equal(
        segment_sums(fixed, layout, AUCELL, 10.0), segment_sums(M, layout, AUCELL, 10.0)
    )


def test_rank_methods_receive_float32_blocks_and_score_the_same() -> None:
    """run_method hands AUCell, UCell and singscore float32 row blocks unwidened (another
    method still gets float64) and their scores equal those of the float64 matrix."""
    import dataclasses

    from sigscore.scoring.methods import get_method
    from sigscore.scoring.run import run_method

    rng = np.random.default_rng(9)
    A = _mixed_rows(rng, 400)
    sets = [
        IndexedSet("a", np.sort(rng.choice(400, 40, replace=False))),
        IndexedSet("b", np.sort(rng.choice(400, 25, replace=False)), np.arange(0, 400, 37)),
    ]
    for name, params in (("aucell", {"max_rank": 20}), ("ucell", {"max_rank": 50}),
                         ("singscore", {}), ("mean", {})):  # fmt: skip
        spec = get_method(name)
        seen: list[np.dtype] = []

        def spy(X, s, _run=spec.run, _seen=seen, **kw):
            _seen.append(X.dtype)
            return _run(X, s, **kw)

        spied = dataclasses.replace(spec, run=spy)
        p = spec.params(**params)
        got = run_method(sp.csr_matrix(A), sets, spied, p, chunk_size=7)
        want = run_method(sp.csr_matrix(A.astype(np.float64)), sets, spec, p, chunk_size=7)
        np.testing.assert_array_equal(got, want)
        assert set(seen) == {np.dtype(np.float32 if spec.float32_blocks else np.float64)}
        assert spec.float32_blocks == (name != "mean")
