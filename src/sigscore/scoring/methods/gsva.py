r"""Gene Set Variation Analysis (GSVA), as implemented in R GSVA 1.46.

Hänzelmann S, Castelo R, Guinney J (2013) GSVA: gene set variation analysis for microarray
and RNA-seq data. BMC Bioinformatics 14:7. doi:10.1186/1471-2105-14-7

Formula. (1) Per gene ``g``, a kernel estimate of its CDF over the ``m`` samples, evaluated
at each sample ``j`` and turned into log-odds::

    p_gj = (1/m) Σ_i K(x_gj, x_gi),   d_gj = log(p_gj / (1 - p_gj))

with ``kcdf="gaussian"``: ``K = Φ((x_gj - x_gi) / h_g)``, bandwidth ``h_g = sd_g / 4``;
``kcdf="poisson"`` (counts): ``K = P(Poisson(x_gi + 0.5) ≤ floor(x_gj))``;
``kcdf="none"``: the empirical CDF ``#{i: x_gi ≤ x_gj} / m``.
(2) Per sample, genes are sorted by decreasing ``d``; position ``r`` (1-based) gets the
symmetric rank score ``s = |n - r + 1 - n/2|``. (3) Per set ``S`` (``k`` genes), the
Kolmogorov-Smirnov-like walk adds ``s_g^tau / Σ_S s^tau`` at set genes and subtracts
``1/(n-k)`` elsewhere; with ``max_diff=True`` the score is ``max⁺ + max⁻`` (the largest
positive plus the largest negative deviation, ``max⁺ - max⁻`` with ``abs_ranking=True``),
with ``max_diff=False`` the deviation of larger magnitude. The walk is evaluated in closed
form at the set genes only (its maxima follow set genes, its minima precede them).

Parameters: ``kcdf="gaussian"`` (or ``"poisson"``, ``"none"``, ``"fast"``), ``max_diff=True``, ``abs_ranking=False``, ``tau=1``,
``r_compat=False``.

Batch dependence: every score depends on all samples in the batch (step 1), so the method
is neither row-wise nor sample-independent. It is a bulk method: the log-odds matrix
(samples × genes) is dense; sparse input is densified in column blocks only. The kernel
step costs O(genes × samples²) at most: per gene only pairs of distinct values closer than
8.3 bandwidths are evaluated (further apart the kernel is exactly 0 or 1), each pair once;
genes run in parallel. The walk needs only the set genes' places in each sample's order of
``d`` (:func:`._gsva_common.set_tie_counts`), so no sample is fully sorted.

The Gaussian CDF is GSVA 1.46's: ``Φ`` tabulated at 10,001 points on [0, 10] and read by
truncation, ``Φ(v) ≈ Φ(floor(1000|v|)/1000)`` (``1 - `` that for ``v < 0``), with the
index computed by the same floating-point operations as R's C code, so every kernel value
is R's. The table's truncation makes the kernel a step function (error vs the exact ``Φ``
up to φ(0)/1000 ≈ 4e-4 per term, 2.3e-4 in the scores of the 200 × 15k benchmark): the
exact ``Φ`` would differ from R by that much. With the table the default agrees with R to
3.6e-13 there and within 4e-6 on other tie-free data (kernel sums that are equal in exact
arithmetic may round differently in R's order, which reorders those genes); where genes
tie exactly in ``d`` (sparse or few-sample data) the default's order-free tie handling
differs from R by design (0.03 on 10 TCGA samples) and ``r_compat`` matches R.

Constant genes (sd < 1e-10 across samples) carry no information and have no bandwidth; they
are dropped from the ranking and from every set, as GSVA does (a set left empty scores NaN).

``r_compat=True`` reproduces GSVA 1.46 to the last bits: the kernel sums run over all
sample pairs in R's order (that order fixes the sums' last bits, and so which genes tie
exactly in ``d``), and genes tied in ``d`` are ordered by their input position (R's stable
``order``). The default sums each pair once in sorted order (same kernel values, last bits
may differ) and handles ties order-independently: a tie block shares the mean of its
positions' rank scores and the walk is only evaluated between blocks, so scores do not
depend on gene order (ties are common with ``kcdf="none"`` and with identical gene
profiles). Without ties the two modes agree to ~1e-12.

``kcdf="fast"`` (opt-in) approximates the default's Gaussian kernel CDF on a grid, in
O(m + L log L) per gene instead of O(m²). Target: ``p_D(x) = (1/m) Σ_i D((x - x_i)/h)`` with
``D(v) = Φ(sign(v)·max(|v| - δ, 0))``, δ = 0.0005 (half of R's table step; the local mean of
R's truncated kernel, which lies within δ·φ(0) ≈ 2e-4 of D per pair). Per gene, with grid
spacing ``Δ = c·h`` (so the kernel at grid offsets is the same for every gene):
(i) linear binning of the m values onto grid points ``g_k = min + kΔ`` (weights ``w_k``);
(ii) ``F_k = Σ_{k'<k} w_k' + w_k/2 + (w ∗ K')_k`` with ``K'(o) = D(oc) - H(o)`` (H the unit
step), which is exactly 0 beyond ±8.3 bandwidths, convolved by FFT (batched over genes);
(iii) ``p(x_j)`` by linear interpolation of ``F/m`` between the grid points around ``x_j``.
Error bound: each of (i) and (iii) is a linear interpolation of a function whose second
derivative is at most ``max|φ'|/h² = 1/(h²√(2πe))``, so each errs by at most
``(Δ²/8)·max|φ'|/h²``, and::

    |p_fast(x_j) - p_D(x_j)| ≤ c²/(4√(2πe)) + 2δφ(0)·N_j/m

where ``N_j`` counts the samples with ``0 < |x_i - x_j| < (2c + δ)·h`` (D has kinks at ±δ;
near them only the bound |D - Φ| ≤ δφ(0) holds; exact ties are exact). ``c`` is set so that
the first term is :data:`FAST_TOL` = 1e-6 (c ≈ 0.0041: ~6,400 grid points per gene at m = 1,000,
plus 2,040 of FFT padding); genes whose exact O(m²) kernel is cheaper than their FFT (m below ~800 for
normal data) take the default's table kernel instead. Measured: p within 9e-7 of p_D; p
within 1.1e-5 of R's table kernel (its truncation is pseudo-random noise about D, which no
smooth kernel follows); scores within 1.2e-4 of R and of the default at 1,000 × 20k (the
p noise moves a set gene by 1-2 of 20k places, 5e-5 each) where ``kcdf="fast"`` took
4.1-7.0 s warm, the default 13-34 s, R GSVA 272 s (2 cores, load 3-8). ``r_compat=True`` (R's kernel bit for bit) excludes it.

``kcdf="poisson"`` requires non-negative values (the Poisson mean ``x + 0.5`` must be
positive); non-integer values are floored where they are the CDF's argument, as R's
``ppois`` does. Directional sets: ``score(up) - score(down)`` (no native up/down form);
never clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import ndtr, pdtr
from scipy.stats import rankdata

from ...errors import UsageError
from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import (
    CHUNK_BYTES,
    CONSTANT_SD,
    column_blocks,
    combine,
    expand_sets,
    gene_mean_sd,
    restrict_parts,
    set_tie_counts,
)
from ._ranks import set_layout

KCDFS = ("gaussian", "poisson", "none", "fast")

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


def _check_poisson(X: Matrix) -> None:
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


@numba.njit(parallel=True, cache=True)
def _walk(greater, equal, before, n, set_pos, set_ptr, tau, max_diff, abs_ranking, tie_blocks, out):
    """Steps 2-3 for every sample (in parallel) and every set (CSR-like ``set_pos`` into the
    set-gene universe). Only the set genes' places in the sample's decreasing order of ``d``
    are needed (``greater``/``equal``/``before`` from :func:`set_tie_counts`): the walk is
    evaluated in closed form between set genes, so the other genes are never sorted."""
    n_obs, u = greater.shape
    n_sets = set_ptr.size - 1
    half = n / 2.0
    for s in numba.prange(n_obs):
        start = np.empty(u, np.int64)
        end = np.empty(u, np.int64)
        score = np.empty(u)
        for p in range(u):
            if tie_blocks:  # the tie block shares the mean of its positions' rank scores
                r = greater[s, p]
                e = r + equal[s, p] - 1
            else:  # R: ties in input order (stable sort), each gene its own position
                r = greater[s, p] + before[s, p]
                e = r
            acc = 0.0
            for q in range(r, e + 1):
                acc += abs(n - q - half)  # |n - (q+1) + 1 - n/2| for 0-based q
            start[p] = r
            end[p] = e
            score[p] = acc / (e - r + 1)
        for t in range(n_sets):
            a = set_ptr[t]
            b = set_ptr[t + 1]
            k = b - a
            if k == 0 or k >= n:
                out[s, t] = np.nan
                continue
            idx = set_pos[a:b]
            w = np.empty(k)
            st = np.empty(k, np.int64)
            total = 0.0
            for i in range(k):
                w[i] = score[idx[i]] ** tau
                st[i] = start[idx[i]]
                total += w[i]
            o = np.argsort(st)
            dec = 1.0 / (n - k)
            mx_pos = 0.0
            mx_neg = 0.0
            hit_w = 0.0
            hits = 0
            i = 0
            while i < k:
                blk = st[o[i]]
                # walk just before this block: `blk - hits` misses so far
                before_blk = hit_w / total - (blk - hits) * dec
                if before_blk < mx_neg:
                    mx_neg = before_blk
                blk_end = end[idx[o[i]]]
                while i < k and st[o[i]] == blk:
                    hit_w += w[o[i]]
                    hits += 1
                    i += 1
                after = hit_w / total - (blk_end + 1 - hits) * dec
                if after > mx_pos:
                    mx_pos = after
            if max_diff:
                out[s, t] = mx_pos - mx_neg if abs_ranking else mx_pos + mx_neg
            else:
                out[s, t] = mx_pos if mx_pos > abs(mx_neg) else mx_neg
    return out


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    kcdf: str = "gaussian",
    max_diff: bool = True,
    abs_ranking: bool = False,
    tau: float = 1.0,
    r_compat: bool = False,
) -> np.ndarray:
    """GSVA enrichment scores, shape (n_obs, n_sets); depends on the whole batch."""
    del gene_stats  # the kernel CDF is estimated from the batch itself
    kcdf_key = str(kcdf).strip().lower()
    if kcdf_key not in KCDFS:
        raise UsageError(f"gsva: unknown kcdf {kcdf!r}; valid: {', '.join(KCDFS)}")
    if kcdf_key == "fast" and r_compat:
        raise UsageError(
            "gsva: r_compat=True reproduces R's kernel bit for bit and kcdf='fast' approximates "
            "it on a grid; give one of them (kcdf='gaussian' with r_compat=True for R's numbers)"
        )
    n_obs, n_genes = X.shape
    if n_obs < 2:
        raise UsageError(
            "gsva estimates each gene's distribution across samples and needs at least 2 "
            f"observations; got {n_obs}. Use ssgsea or singscore to score a single sample."
        )
    if kcdf_key == "poisson":
        _check_poisson(X)
    plan = expand_sets(sets)
    _, sd = gene_mean_sd(X)
    keep = sd >= CONSTANT_SD
    kept = np.flatnonzero(keep)
    if kept.size < 2:
        raise UsageError(
            f"gsva: fewer than 2 genes vary across the {n_obs} observations; nothing to rank"
        )
    Xk = X[:, kept] if kept.size < n_genes else X
    D = logodds(Xk, sd[kept], kcdf_key, r_compat)
    # re-index set genes onto the kept genes
    new_index = np.full(n_genes, -1, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    plan = restrict_parts(plan, keep)
    kept_parts = [IndexedSet(str(j), new_index[p.genes]) for j, p in enumerate(plan.parts)]
    layout = set_layout(kept_parts, kept.size)
    greater, equal, before = set_tie_counts(D, layout, ordinal=r_compat)
    set_pos = np.concatenate(layout.up or [np.zeros(0, np.int64)]).astype(np.int64)
    set_ptr = np.zeros(len(plan.parts) + 1, dtype=np.int64)
    set_ptr[1:] = np.cumsum([p.genes.size for p in plan.parts])
    part_scores = np.empty((n_obs, len(plan.parts)))
    _walk(
        greater,
        equal,
        before,
        kept.size,
        set_pos,
        set_ptr,
        float(tau),
        bool(max_diff),
        bool(abs_ranking),
        not r_compat,
        part_scores,
    )
    return combine(part_scores, plan)


SPEC = MethodSpec(
    name="gsva",
    run=run,
    summary="GSVA: kernel-CDF log-odds per gene, rank-score KS walk per sample (batch-dependent)",
    reference=(
        "Hänzelmann S, Castelo R, Guinney J. BMC Bioinformatics 2013;14:7. "
        "doi:10.1186/1471-2105-14-7"
    ),
    rowwise=False,
    sample_independent=False,
    defaults={
        "kcdf": "gaussian",
        "max_diff": True,
        "abs_ranking": False,
        "tau": 1.0,
        "r_compat": False,
    },
    accepts_weights=False,
)
