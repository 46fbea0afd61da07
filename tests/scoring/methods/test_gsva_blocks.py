"""GSVA never holds the samples × genes log-odds: step 1 comes a gene block at a time and
:class:`SetTieCounter` places each block among the set genes' values. Checked here against
the whole-matrix path (``logodds`` + ``set_tie_counts``), bit for bit, and by the memory a
call allocates."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sigscore.scoring.methods import IndexedSet, _gsva_kcdf, gsva
from sigscore.scoring.methods._gsva_common import SetTieCounter, gene_mean_sd, set_tie_counts
from sigscore.scoring.methods._ranks import set_layout


def _split(n: int, rng: np.random.Generator, shuffle: bool) -> list[np.ndarray]:
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 4), replace=False))
    parts = np.split(np.arange(n), cuts)
    if shuffle:
        rng.shuffle(parts)
    return parts


@pytest.mark.parametrize("kind", ["normal", "rounded", "infinities", "float32"])
def test_counter_over_blocks_equals_whole_rows(kind):
    """Any split into column blocks (any order unless ordinal), any bucket count, gives
    :func:`set_tie_counts`' numbers."""
    rng = np.random.default_rng(["normal", "rounded", "infinities", "float32"].index(kind))
    for _ in range(6):
        n = int(rng.integers(5, 200))
        X = rng.normal(size=(int(rng.integers(1, 10)), n))
        if kind == "rounded":
            X = np.round(X, 1)
        elif kind == "infinities":
            X[rng.random(X.shape) < 0.1] = np.inf
            X[rng.random(X.shape) < 0.1] = -np.inf
        elif kind == "float32":
            X = X.astype(np.float32)
        k = int(rng.integers(1, n + 1))
        layout = set_layout(
            [IndexedSet(f"s{i}", rng.choice(n, k, replace=False)) for i in range(2)], n
        )
        for ordinal in (True, False):
            want = set_tie_counts(X, layout, ordinal=ordinal)
            for grid_bytes in (1, 1 << 20):  # one bucket per row, or 16 per set value
                counter = SetTieCounter(
                    X[:, layout.genes].astype(np.float64),
                    layout,
                    ordinal=ordinal,
                    grid_bytes=grid_bytes,
                )
                for cols in _split(n, rng, shuffle=not ordinal):
                    counter.add(np.ascontiguousarray(X[:, cols]), cols)
                got = counter.result()
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
                if ordinal:
                    np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize(
    ("kcdf", "r_compat", "m"),
    [
        ("gaussian", False, 30),
        ("gaussian", True, 30),
        ("poisson", False, 30),
        ("none", False, 30),
        ("fast", False, 900),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocks_equal_whole_matrix(monkeypatch, kcdf, r_compat, m, dtype):
    """Small blocks (16 genes), constant genes left out, ties in d: the streamed log-odds
    and counts are the whole matrix's, bit for bit."""
    monkeypatch.setattr(_gsva_kcdf, "BLOCK_BYTES", 8 * m * 16)
    rng = np.random.default_rng(5)
    n = 300
    X = np.floor(np.exp(rng.normal(1.0, 1.0, size=(m, n)))).astype(dtype)  # counts, ties
    X[:, 4] = 2.0  # constant: not a column of the log-odds
    _, sd = gene_mean_sd(X)
    kept = np.flatnonzero(sd >= 1e-10)
    D = gsva.logodds(np.ascontiguousarray(X[:, kept]), sd[kept], kcdf, r_compat)
    step1 = _gsva_kcdf.LogOdds(X, kept, sd[kept], kcdf, r_compat)
    sets = [IndexedSet(f"s{i}", rng.choice(kept.size, 40, replace=False)) for i in range(3)]
    layout = set_layout(sets, kept.size)
    vals = step1.columns(layout.genes)
    np.testing.assert_array_equal(vals, D[:, layout.genes])
    counter = SetTieCounter(vals, layout, ordinal=r_compat, grid_bytes=64)
    seen = np.zeros(kept.size, dtype=int)
    for idx, block in step1.blocks(skip=layout.genes):
        counter.add(block, idx, fill=True)  # the set genes' columns: filled, not computed
        np.testing.assert_array_equal(block, D[:, idx])
        seen[idx] += 1
    assert (seen == 1).all()
    want = set_tie_counts(D, layout, ordinal=r_compat)
    for got, w in zip(counter.result(), want, strict=True):
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("kcdf", ["gaussian", "fast"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_peak_allocation_a_fraction_of_the_input(kcdf, dtype):
    """numpy allocations during a call (tracemalloc sees them; the kernels' per-gene
    scratch is tiny) stay well below the input: no samples × genes matrix (the whole-matrix
    path allocated 1.0x for it), and float32 input is not widened to a float64 copy."""
    rng = np.random.default_rng(9)
    X = (
        rng.normal(size=(120, 6)) @ rng.normal(size=(6, 12000)) + rng.normal(size=(120, 12000))
    ).astype(dtype)
    # 10 sets of 40 genes (~3% of the genes, as 10 sets of ~60 among 20k): the set genes'
    # state (20 bytes per sample) grows with them, the blocks with the input
    sets = [IndexedSet(f"s{i}", rng.choice(12000, 40, replace=False)) for i in range(10)]
    gsva.run(X, sets, kcdf=kcdf)  # compile outside the measurement
    tracemalloc.start()
    try:
        gsva.run(X, sets, kcdf=kcdf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.75 * X.nbytes
