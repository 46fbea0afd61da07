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
