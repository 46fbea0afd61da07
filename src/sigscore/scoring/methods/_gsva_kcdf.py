"""GSVA step 1: each gene's kernel CDF over the samples, as log-odds (``logodds``).

Gaussian kernel as GSVA 1.46 evaluates it (``Φ`` from R's 10,001-point table, read by
truncation with R's index arithmetic; all pairs in R's order with ``r_compat``, else each
pair once in sorted order), the opt-in binned/FFT ``kcdf="fast"`` with its error bound,
the Poisson kernel for counts and the empirical CDF. The formulas, the bound and the
measured errors are in :mod:`sigscore.scoring.methods.gsva`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtr, pdtr
from scipy.stats import rankdata

from ...errors import UsageError
from ._base import Matrix
from ._gsva_common import CHUNK_BYTES, block_width, dense_columns, matrix_bytes

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
def _gaussian_logodds(X, cols, bw, table, r_order, out, ocols):
    """Gaussian-kernel CDF log-odds of the columns ``cols`` of X (samples × genes) into
    ``out[:, ocols[b]]`` (``bw[b]``: the bandwidth of column ``cols[b]``).

    Per gene the values are sorted and collapsed to distinct values with counts; each pair
    of distinct values is evaluated once (:func:`_pair_sums_table`). ``r_order``: R's
    all-pairs sum in sample order instead (:func:`_sums_r`), slower, same kernel values.
    Genes run in parallel; float32 input is widened per column. A gene's values depend on
    its own column only, so any grouping of the columns gives the same bits.
    """
    m = X.shape[0]
    for b in numba.prange(cols.size):
        g = cols[b]
        o = ocols[b]
        col = np.empty(m)
        for i in range(m):
            col[i] = X[i, g]
        if r_order:
            acc = np.empty(m)
            _sums_r(col, bw[b], table, acc)
            for i in range(m):
                p = acc[i] / m
                out[i, o] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
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
        _pair_sums_table(u, cnt[: k + 1], bw[b], table, acc)
        for i in range(m):
            p = acc[which[i]] / m
            out[i, o] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
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
    linear interpolation, as log-odds into ``out[:, b]`` (gene ``cols[b]``)."""
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
            out[i, b] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
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


@numba.njit(parallel=True, cache=True)
def _col_min_max(X, cols, lo, hi):
    """Per column ``cols[b]`` of X: its minimum and maximum (float64), read in place."""
    m = X.shape[0]
    for b in numba.prange(cols.size):
        g = cols[b]
        a = float(X[0, g])
        z = a
        for i in range(1, m):
            v = float(X[i, g])
            a = min(a, v)
            z = max(z, v)
        lo[b] = a
        hi[b] = z


def fast_grid(X: np.ndarray, bw: np.ndarray, cols: np.ndarray | None = None) -> FastGrid:
    """The ``kcdf="fast"`` grid of the columns ``cols`` (default: all) of dense ``X``
    (samples × genes); ``bw[b]`` is the bandwidth of column ``cols[b]``."""
    m = X.shape[0]
    cols = np.arange(X.shape[1]) if cols is None else cols
    lo = np.empty(cols.size)
    hi = np.empty(cols.size)
    _col_min_max(X, cols, lo, hi)
    return _grid(lo, hi, bw, m)


def _fast_batches(grid: FastGrid) -> tuple[list[np.ndarray], np.ndarray]:
    """The grid genes grouped for batched FFTs, and each gene's FFT length (0: exact kernel).

    Genes go by grid length; a batch is the next genes whose arrays (grid, spectrum,
    result: ~4 float64 copies of it) fit the memory budget at the FFT length of the longest
    of them. The length is fixed here per gene, and the FFTs transform each row on its own,
    so a gene's values do not depend on which genes it is computed with.
    """
    length = grid.length
    size_of = np.zeros(length.size, dtype=np.int64)
    todo = np.flatnonzero(grid.fast)
    todo = todo[np.argsort(length[todo], kind="stable")]
    batches = []
    start = 0
    while start < todo.size:
        rows = max(1, CHUNK_BYTES // (32 * int(length[todo[start]])))
        stop = min(todo.size, start + rows)
        size = next_fast_len(int(length[todo[stop - 1]]), real=True)
        stop = min(stop, start + max(1, CHUNK_BYTES // (32 * size)))
        size_of[todo[start:stop]] = size
        batches.append(todo[start:stop])
        start = stop
    return batches, size_of


def _fast_run(
    X: np.ndarray, xcols: np.ndarray, grid: FastGrid, idx: np.ndarray, size: int
) -> np.ndarray:
    """``kcdf="fast"`` log-odds (samples × idx.size) of the grid's genes ``idx`` (columns
    ``xcols`` of X) at FFT length ``size``."""
    w = np.zeros((idx.size, size))
    lo, step, npts = grid.lo[idx], grid.step[idx], grid.npts[idx]
    _fast_bin(X, xcols, lo, step, npts, w)
    spec = rfft(w, axis=1, workers=-1)
    spec *= _fast_kernel_hat(size)
    conv = irfft(spec, n=size, axis=1, workers=-1)
    del spec
    out = np.empty((X.shape[0], idx.size))
    return _fast_interp(X, xcols, lo, step, npts, w, conv, out)


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


#: Bytes of one block of log-odds (samples × genes, float64): GSVA never holds them all,
#: only a block at a time (its kernel temporaries are per gene, its FFT ones per batch).
BLOCK_BYTES = CHUNK_BYTES // 4
#: ... and at most this fraction of the input's bytes: a few blocks, as each one costs two
#: parallel regions (their start and imbalance) that the unblocked kernel paid once.
BLOCK_SHARE = 4


class LogOdds:
    """Step 1 over the columns ``xcols`` of ``X`` (gene ``j`` is column ``xcols[j]``, with
    sample sd ``sd[j]``), for any group of genes at a time: :meth:`columns` for chosen
    genes, :meth:`blocks` for all of them within :data:`BLOCK_BYTES` a block.

    A gene's values depend on its own column only (``kcdf="fast"``: also on its FFT length,
    fixed per gene from the plan of all genes), so every grouping gives the same bits.
    Dense input (float32 or float64) is read in place; sparse input is densified a block of
    columns at a time.
    """

    def __init__(self, X: Matrix, xcols: np.ndarray, sd: np.ndarray, kcdf: str, r_compat: bool):
        self.X = X
        self.xcols = np.asarray(xcols, dtype=np.int64)
        self.bw = np.asarray(sd, dtype=np.float64) / 4.0
        self.kcdf = kcdf
        self.r_compat = r_compat
        self.m = X.shape[0]
        self.grid: FastGrid | None = None
        self.batches: list[np.ndarray] = []
        if kcdf == "fast":
            if sp.issparse(X):
                lo = X.min(axis=0).toarray().ravel()[self.xcols].astype(np.float64)
                hi = X.max(axis=0).toarray().ravel()[self.xcols].astype(np.float64)
                self.grid = _grid(lo, hi, self.bw, self.m)
            else:
                self.grid = fast_grid(X, self.bw, self.xcols)
            self.batches, self.size_of = _fast_batches(self.grid)

    def columns(
        self, idx: np.ndarray, out: np.ndarray | None = None, ocols: np.ndarray | None = None
    ) -> np.ndarray:
        """Log-odds of genes ``idx``: samples × idx.size (C order), or into the columns
        ``ocols`` of ``out`` (no temporary of that size with the Gaussian kernel)."""
        idx = np.asarray(idx, dtype=np.int64)
        if out is None:
            out = np.empty((self.m, idx.size))
            ocols = np.arange(idx.size)
        if sp.issparse(self.X):
            Xs = dense_columns(self.X, self.xcols[idx])
            cols = np.arange(idx.size)
        else:
            Xs, cols = self.X, self.xcols[idx]
        if self.kcdf == "gaussian":
            _gaussian_logodds(Xs, cols, self.bw[idx], _PHI_TABLE, self.r_compat, out, ocols)
            return out
        if self.kcdf in ("poisson", "none"):
            G = np.asarray(Xs[:, cols], dtype=np.float64).T
            kernel = _poisson_logodds if self.kcdf == "poisson" else _ecdf_logodds
            out[:, ocols] = kernel(np.ascontiguousarray(G)).T
            return out
        size = self.size_of[idx]
        for s in np.unique(size):  # 0: the table kernel (cheaper than an FFT for this gene)
            sel = np.flatnonzero(size == s)
            if s == 0:
                kernel_args = (self.bw[idx[sel]], _PHI_TABLE, False, out, ocols[sel])
                _gaussian_logodds(Xs, cols[sel], *kernel_args)
            else:
                out[:, ocols[sel]] = _fast_run(Xs, cols[sel], self.grid, idx[sel], int(s))
        return out

    def blocks(self, skip: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(genes, log-odds)`` over all genes, by increasing gene except with
        ``kcdf="fast"`` (its FFT batches). The columns of genes ``skip`` are left unset (not
        computed again: the caller has them, :meth:`SetTieCounter.add` fills them)."""
        n = self.xcols.size
        todo = np.ones(n, dtype=bool)
        if skip is not None:
            todo[skip] = False
        width = block_width(self.m, min(BLOCK_BYTES, matrix_bytes(self.X) // BLOCK_SHARE))
        if self.kcdf == "fast":
            exact = np.flatnonzero(self.size_of == 0)
            groups = [exact[a : a + width] for a in range(0, exact.size, width)] + self.batches
        else:
            groups = (np.arange(a, min(n, a + width)) for a in range(0, n, width))
        for idx in groups:
            block = np.empty((self.m, idx.size))
            new = np.flatnonzero(todo[idx])
            if new.size:
                self.columns(idx[new], block, new)
            yield idx, block
            del block  # before the next one is allocated


def _grid(lo: np.ndarray, hi: np.ndarray, bw: np.ndarray, m: int) -> FastGrid:
    step = FAST_STEP * bw
    npts = np.floor((hi - lo) / step).astype(np.int64) + 2  # lo + (npts - 1)·step > hi
    length = npts + _FAST_HALF  # circular convolution without wrap-around
    fast = float(m) * m / 2.0 > _PAIR_PER_FFT_POINT * length * np.log2(length)
    return FastGrid(lo, step, npts, length, fast)


def logodds(X: Matrix, sd: np.ndarray, kcdf: str, r_compat: bool) -> np.ndarray:
    """Step 1 as one matrix, observations × genes (genes of ``X``); GSVA itself never
    holds it whole (:class:`LogOdds`)."""
    step1 = LogOdds(X, np.arange(X.shape[1]), sd, kcdf, r_compat)
    D = np.empty(X.shape)
    for idx, block in step1.blocks():
        D[:, idx] = block
    return D
