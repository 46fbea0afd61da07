"""GSVA step 1: each gene's kernel CDF over the samples, as log-odds (``logodds``).

Gaussian kernel as GSVA 1.46 evaluates it (``Φ`` from R's 10,001-point table, read by
truncation with R's index arithmetic; all pairs in R's order with ``r_compat``, else each
pair once in sorted order), the opt-in binned/FFT ``kcdf="fast"`` with its error bound,
the Poisson kernel for counts and the empirical CDF. The formulas, the bound and the
measured errors are in :mod:`sigscore.scoring.methods.gsva`'s docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtr, pdtr
from scipy.stats import rankdata

from ...errors import UsageError
from ._base import Matrix
from ._gsva_common import CHUNK_BYTES, column_blocks

# GSVA 1.46 kernel_estimation.c: Φ tabulated at 10,001 points on [0, 10].
_TABLE_RES = 10000
_TABLE_MAX = 10.0
_PHI_TABLE = ndtr(_TABLE_MAX * np.arange(_TABLE_RES + 1, dtype=np.float64) / _TABLE_RES)

#: First table index from which every entry is exactly 1.0 (Φ(8.293) rounds to 1 in double
#: precision): sample pairs further apart add exactly 1 (or 0), so they are counted, not
#: evaluated. Derived from the table itself, not assumed.
_TABLE_ONE = int(np.flatnonzero(_PHI_TABLE < 1.0)[-1]) + 1


@numba.njit(cache=True)
def _table_index(d, h):
    """GSVA 1.46's table index for a difference ``d >= 0`` at bandwidth ``h``: the same
    operations in the same order as its C code (``(int)(fabs(v) / 10 * 10000)``, ``v = d/h``),
    so the index, and the kernel value, are bit-identical to R's."""
    return int(d / h / _TABLE_MAX * _TABLE_RES)


@numba.njit(cache=True)
def _pair_sums_table(u, cnt, h, table, acc):
    """acc[a] += Σ_b cnt[b]·K(u[a] - u[b]) for sorted distinct ``u`` with GSVA's tabulated
    kernel (``K(v) = table[idx(v)]`` for v ≥ 0, ``1 - table[idx(-v)]`` below). Each pair is
    evaluated once (the two directions use the same index, and ``1 - c`` is exact for
    c ≥ 1/2), and only while the index is below :data:`_TABLE_ONE`."""
    lo = 0
    below = 0.0  # count of values so far below u[a] that the kernel counts as exactly 1
    for a in range(u.size):
        ca = cnt[a]
        ua = u[a]
        while _table_index(ua - u[lo], h) >= _TABLE_ONE:
            below += cnt[lo]
            lo += 1
        sa = acc[a] + 0.5 * ca + below  # ties (and the sample itself): table[0] = Φ(0) = 1/2
        for b in range(lo, a):
            c = table[_table_index(ua - u[b], h)]
            sa += cnt[b] * c  # a scalar, so the store to acc[b] cannot alias it
            acc[b] += ca * (1.0 - c)
        acc[a] = sa


@numba.njit(cache=True)
def _sums_r(col, h, table, acc):
    """acc[j] = Σ_i Φ((col[j] - col[i]) / h) as GSVA 1.46 computes it: R's truncating table
    lookup, summed in sample order. The order matters: it fixes the last bits of the sums,
    and so which genes tie exactly in the log-odds (R breaks such ties by gene position)."""
    m = col.size
    for j in range(m):
        s = 0.0
        for i in range(m):
            v = (col[j] - col[i]) / h
            if v < -_TABLE_MAX:
                c = 0.0
            elif v > _TABLE_MAX:
                c = 1.0
            else:
                c = table[int(abs(v) / _TABLE_MAX * _TABLE_RES)]
                if v < 0:
                    c = 1.0 - c
            s += c
        acc[j] = s


@numba.njit(parallel=True, cache=True)
def _gaussian_logodds(X, bw, table, r_order, out):
    """Gaussian-kernel CDF log-odds of every column of X (samples × genes) into ``out``.

    Per gene the values are sorted and collapsed to distinct values with counts; each pair
    of distinct values is evaluated once (:func:`_pair_sums_table`). ``r_order``: R's
    all-pairs sum in sample order instead (:func:`_sums_r`), slower, same kernel values.
    Genes run in parallel; float32 input is widened per column.
    """
    m, n_genes = X.shape
    for g in numba.prange(n_genes):
        col = np.empty(m)
        for i in range(m):
            col[i] = X[i, g]
        if r_order:
            acc = np.empty(m)
            _sums_r(col, bw[g], table, acc)
            for i in range(m):
                p = acc[i] / m
                out[i, g] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
            continue
        order = np.argsort(col)
        u = np.empty(m)
        cnt = np.empty(m)
        which = np.empty(m, np.int64)  # sample -> index of its distinct value
        k = -1
        for q in range(m):
            x = col[order[q]]
            if k < 0 or x != u[k]:
                k += 1
                u[k] = x
                cnt[k] = 0.0
            cnt[k] += 1.0
            which[order[q]] = k
        u = u[: k + 1]
        acc = np.zeros(k + 1)
        _pair_sums_table(u, cnt[: k + 1], bw[g], table, acc)
        for i in range(m):
            p = acc[which[i]] / m
            out[i, g] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
    return out


# ---------------------------------------------------------------- kcdf="fast"

#: Target of the grid part of the error bound of ``kcdf="fast"`` on the kernel CDF p.
FAST_TOL = 1e-6
#: max |φ'| = φ'(1) = 1/√(2πe): the bound on Φ's second derivative.
_PHI1_MAX = 1.0 / math.sqrt(2.0 * math.pi * math.e)
#: Grid spacing / bandwidth, c = Δ/h, from the bound c²·max|φ'|/4 = FAST_TOL.
FAST_STEP = math.sqrt(4.0 * FAST_TOL / _PHI1_MAX)
#: Half a step of R's table (0.001): ``Φ(floor(1000 v)/1000)`` is on average ``Φ(v - δ)``.
FAST_SHIFT = 0.5 * _TABLE_MAX / _TABLE_RES
#: Grid offsets beyond which the shifted kernel is exactly 1 (or 0) in double precision.
_FAST_HALF = math.ceil((_TABLE_ONE * _TABLE_MAX / _TABLE_RES + FAST_SHIFT) / FAST_STEP)
#: A gene takes the exact (table) kernel when m² pair lookups cost less than its FFTs:
#: measured ~1.5 ns per pair and ~5·log2(L) ns per grid point on this project's machine.
_PAIR_PER_FFT_POINT = 3.0


def shifted_kernel(v: np.ndarray) -> np.ndarray:
    """The kernel ``kcdf="fast"`` approximates: ``Φ(sign(v)·max(|v| - δ, 0))``, the local
    mean of R's truncated table kernel (δ = half its 0.001 step), 1/2 for |v| ≤ δ."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(
        v >= 0, ndtr(np.maximum(v - FAST_SHIFT, 0.0)), 1.0 - ndtr(np.maximum(-v - FAST_SHIFT, 0.0))
    )


def _fast_kernel_hat(length: int) -> np.ndarray:
    """rfft of K'(o) = D(o·c) - H(o) at grid offsets ``|o| <= _FAST_HALF`` (circular, length
    ``length``), H the unit step with H(0) = 1/2: compactly supported, odd (K'(0) = 0)."""
    o = np.arange(1, _FAST_HALF + 1)
    right = ndtr(o * FAST_STEP - FAST_SHIFT) - 1.0  # D(oc) - 1, exactly 0 at the far end
    k = np.zeros(length)
    k[1 : _FAST_HALF + 1] = right
    k[length - _FAST_HALF :] = -right[::-1]  # K'(-o) = -K'(o): D(-v) = 1 - D(v)
    return rfft(k)


@numba.njit(parallel=True, cache=True)
def _fast_bin(X, cols, lo, step, npts, w):
    """Linear binning: each value of gene ``cols[b]`` splits its unit weight between the two
    grid points ``lo[b] + k·step[b]`` around it (``w[b, :npts[b]]``, zero beyond)."""
    m = X.shape[0]
    for b in numba.prange(cols.size):
        g = cols[b]
        last = npts[b] - 2
        for i in range(m):
            t = (float(X[i, g]) - lo[b]) / step[b]
            k = min(int(t), last)
            f = t - k
            w[b, k] += 1.0 - f
            w[b, k + 1] += f


@numba.njit(parallel=True, cache=True)
def _fast_interp(X, cols, lo, step, npts, w, conv, out):
    """Grid CDF ``F[k] = Σ_{k'<k} w[k'] + w[k]/2 + (w * K')[k]``, read at each sample by
    linear interpolation, as log-odds into ``out[:, cols[b]]``."""
    m = X.shape[0]
    for b in numba.prange(cols.size):
        g = cols[b]
        n = npts[b]
        grid = np.empty(n)
        below = 0.0
        for k in range(n):
            grid[k] = below + 0.5 * w[b, k] + conv[b, k]
            below += w[b, k]
        last = n - 2
        for i in range(m):
            t = (float(X[i, g]) - lo[b]) / step[b]
            k = min(int(t), last)
            f = t - k
            p = min(((1.0 - f) * grid[k] + f * grid[k + 1]) / m, 1.0)
            out[i, g] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
    return out


@dataclass(frozen=True)
class FastGrid:
    """Per gene of a block: grid start ``lo``, spacing ``step``, points ``npts``, the FFT
    length it needs (``length``) and whether it takes the grid (``fast``) or, where its
    exact kernel costs less, the default's table kernel."""

    lo: np.ndarray
    step: np.ndarray
    npts: np.ndarray
    length: np.ndarray
    fast: np.ndarray


def fast_grid(X: np.ndarray, bw: np.ndarray) -> FastGrid:
    """The ``kcdf="fast"`` grid of every column of dense ``X`` (samples × genes)."""
    m = X.shape[0]
    lo = X.min(axis=0).astype(np.float64)
    hi = X.max(axis=0).astype(np.float64)
    step = FAST_STEP * bw
    npts = np.floor((hi - lo) / step).astype(np.int64) + 2  # lo + (npts - 1)·step > hi
    length = npts + _FAST_HALF  # circular convolution without wrap-around
    fast = float(m) * m / 2.0 > _PAIR_PER_FFT_POINT * length * np.log2(length)
    return FastGrid(lo, step, npts, length, fast)


def _fast_logodds(X: np.ndarray, bw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``kcdf="fast"`` log-odds of the dense block ``X`` (samples × genes) into ``out``.

    Grid spacing ``c·h`` per gene (c = :data:`FAST_STEP`), so the kernel at grid offsets is
    the same for every gene; genes are grouped by grid length for batched FFTs. Genes whose
    exact kernel is cheaper (few samples) take the default's table kernel.
    """
    m = X.shape[0]
    grid = fast_grid(X, bw)
    lo, step, npts, length, fast = grid.lo, grid.step, grid.npts, grid.length, grid.fast
    exact = np.flatnonzero(~fast)
    if exact.size:
        sub = np.empty((m, exact.size))
        _gaussian_logodds(X[:, exact], bw[exact], _PHI_TABLE, False, sub)
        out[:, exact] = sub
    todo = np.flatnonzero(fast)
    todo = todo[np.argsort(length[todo], kind="stable")]
    start = 0
    while start < todo.size:
        # the next genes (by grid length) whose arrays (grid, spectrum, result: ~4 float64
        # copies of it) fit the memory budget at the FFT length of the longest of them
        rows = max(1, CHUNK_BYTES // (32 * int(length[todo[start]])))
        stop = min(todo.size, start + rows)
        size = next_fast_len(int(length[todo[stop - 1]]), real=True)
        stop = min(stop, start + max(1, CHUNK_BYTES // (32 * size)))
        cols = todo[start:stop]
        w = np.zeros((cols.size, size))
        _fast_bin(X, cols, lo[cols], step[cols], npts[cols], w)
        conv = irfft(
            rfft(w, axis=1, workers=-1) * _fast_kernel_hat(size), n=size, axis=1, workers=-1
        )
        _fast_interp(X, cols, lo[cols], step[cols], npts[cols], w, conv, out)
        start = stop
    return out


def _poisson_logodds(G: np.ndarray) -> np.ndarray:
    """Poisson-kernel CDF log-odds for a genes × samples block of counts.

    Per gene the kernel is evaluated between distinct values only (counts repeat a lot).
    """
    n_genes, m = G.shape
    out = np.empty((n_genes, m))
    for g in range(n_genes):
        u, inverse, cnt = np.unique(G[g], return_inverse=True, return_counts=True)
        q = np.floor(u + 1e-7)  # R's ppois floors its argument (with the same fuzz)
        p = pdtr(q[:, None], u[None, :] + 0.5) @ cnt / m
        with np.errstate(divide="ignore"):
            out[g] = -np.log((1.0 - p) / p)[inverse]
    return out


def _ecdf_logodds(G: np.ndarray) -> np.ndarray:
    m = G.shape[1]
    p = rankdata(G, method="max", axis=1) / m
    with np.errstate(divide="ignore"):
        return np.log(p / (1.0 - p))


def check_poisson(X: Matrix) -> None:
    """Raise UsageError naming the first negative value (Poisson means must be positive)."""
    if sp.issparse(X):
        coo = X.tocoo()
        bad = np.flatnonzero(coo.data < 0)
        if bad.size == 0:
            return
        obs, gene, value = int(coo.row[bad[0]]), int(coo.col[bad[0]]), float(coo.data[bad[0]])
    else:
        neg = np.argwhere(X < 0)
        if neg.size == 0:
            return
        obs, gene = int(neg[0, 0]), int(neg[0, 1])
        value = float(X[obs, gene])
    raise UsageError(
        f"gsva kcdf='poisson' needs non-negative counts, but observation #{obs} has {value:g} "
        f"for gene #{gene} (0-based row and column of the matrix). Give raw counts, or use "
        "kcdf='gaussian' for log-scale or continuous data.",
        detail={"observation": obs, "gene": gene, "value": value},
    )


def logodds(X: Matrix, sd: np.ndarray, kcdf: str, r_compat: bool) -> np.ndarray:
    """Step 1: the kernel-CDF log-odds matrix, observations × genes (genes of ``X``)."""
    n_obs, n_genes = X.shape
    D = np.empty((n_obs, n_genes))
    bw = sd / 4.0
    if kcdf in ("gaussian", "fast") and not sp.issparse(X):
        # dense input (float32 or float64) is read in place, column by column
        if kcdf == "fast":
            return _fast_logodds(X, bw, D)
        return _gaussian_logodds(X, bw, _PHI_TABLE, r_compat, D)
    for cols, block in column_blocks(X):
        if kcdf == "fast":
            _fast_logodds(block, bw[cols], D[:, cols])
        elif kcdf == "gaussian":
            _gaussian_logodds(block, bw[cols], _PHI_TABLE, r_compat, D[:, cols])
        elif kcdf == "poisson":
            D[:, cols] = _poisson_logodds(np.ascontiguousarray(block.T)).T
        else:
            D[:, cols] = _ecdf_logodds(np.ascontiguousarray(block.T)).T
    return D
