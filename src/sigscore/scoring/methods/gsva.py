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

Parameters: ``kcdf="gaussian"``, ``max_diff=True``, ``abs_ranking=False``, ``tau=1``,
``r_compat=False``.

Batch dependence: every score depends on all samples in the batch (step 1), so the method
is neither row-wise nor sample-independent. It is a bulk method: the log-odds matrix
(samples × genes) is dense; sparse input is densified in column blocks only. The kernel
step costs O(genes × samples²) at most: per gene only pairs of distinct values closer than
8.5 bandwidths are evaluated (further apart Φ is exactly 0 or 1 in double precision), each
pair once, with Φ from a cubic Hermite table (error ≤ 1.3e-15); genes run in parallel.

Constant genes (sd < 1e-10 across samples) carry no information and have no bandwidth; they
are dropped from the ranking and from every set, as GSVA does (a set left empty scores NaN).

``r_compat=True`` reproduces two GSVA 1.46 implementation details: the Gaussian CDF is read
from a 10,001-entry table of ``Φ`` on [0, 10] indexed by truncation (``Φ(v)`` ≈
``Φ(floor(1000|v|)/1000)``); genes tied in ``d`` are ordered by their input position (R's
stable ``order``). The default uses the exact ``Φ`` and handles ties order-independently:
a tie block shares the mean of its positions' rank scores and the walk is only evaluated
between blocks — so scores do not depend on gene order (ties are common with
``kcdf="none"`` and with identical gene profiles).

``kcdf="poisson"`` requires non-negative values (the Poisson mean ``x + 0.5`` must be
positive); non-integer values are floored where they are the CDF's argument, as R's
``ppois`` does. Directional sets: ``score(up) - score(down)`` (no native up/down form);
never clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr, pdtr
from scipy.stats import rankdata

from ...errors import UsageError
from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import (
    CONSTANT_SD,
    column_blocks,
    combine,
    expand_sets,
    gene_mean_sd,
    restrict_parts,
)

KCDFS = ("gaussian", "poisson", "none")

# GSVA 1.46 kernel_estimation.c: Φ tabulated at 10,001 points on [0, 10].
_TABLE_RES = 10000
_TABLE_MAX = 10.0
_PHI_TABLE = ndtr(_TABLE_MAX * np.arange(_TABLE_RES + 1, dtype=np.float64) / _TABLE_RES)

#: Beyond this many bandwidths Φ(v) rounds to exactly 1.0 in double precision and
#: Φ(-v) < 1e-17, so only sample pairs closer than this are evaluated.
_SATURATE = 8.5
#: Intervals per unit of v of the cubic Hermite table of Φ used by the exact path.
_STEPS = 1024


def _hermite_phi_table() -> np.ndarray:
    """Horner coefficients (4 per piece, flattened) of cubic Hermite pieces of Φ on [k/_STEPS, (k+1)/_STEPS].

    The interpolation error is at most max|Φ⁗| δ⁴/384 ≈ 0.55 · 1024⁻⁴ / 384 ≈ 1.3e-15 per
    evaluation: the same as ``0.5·erfc(-v/√2)`` up to rounding, at a fraction of its cost.
    """
    v = np.arange(int(_SATURATE * _STEPS) + 2, dtype=np.float64) / _STEPS
    p = ndtr(v)
    d = np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi) / _STEPS  # dΦ/dt, t = fraction
    p0, p1, m0, m1 = p[:-1], p[1:], d[:-1], d[1:]
    coef = np.stack([p0, m0, 3.0 * (p1 - p0) - 2.0 * m0 - m1, 2.0 * (p0 - p1) + m0 + m1], axis=1)
    return np.ascontiguousarray(coef).ravel()


_PHI_HERMITE = _hermite_phi_table()


@numba.njit(fastmath=True, cache=True)
def _pair_sums_exact(w, cnt, coef, acc):
    """acc[a] += Σ_b cnt[b]·Φ(w[a] - w[b]) for sorted distinct ``w`` in units of 1/_STEPS
    bandwidths; Φ from the flattened Hermite table, each pair once, within _SATURATE only."""
    lim = _SATURATE * _STEPS
    lo = 0
    below = 0.0  # count of values more than _SATURATE bandwidths below w[a]: Φ = 1 exactly
    for a in range(w.size):
        ca = cnt[a]
        while w[a] - w[lo] > lim:
            below += cnt[lo]
            lo += 1
        sa = acc[a] + 0.5 * ca + below  # ties (and the sample itself): Φ(0) = 1/2
        wa = w[a]
        for b in range(lo, a):
            x = wa - w[b]
            j = int(x)
            t = x - j
            j4 = 4 * j
            c = coef[j4] + t * (coef[j4 + 1] + t * (coef[j4 + 2] + t * coef[j4 + 3]))
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
def _gaussian_logodds(X, bw, coef, table, use_table, out):
    """Gaussian-kernel CDF log-odds of every column of X (samples × genes) into ``out``.

    Per gene the values are sorted and collapsed to distinct values with counts; each pair
    of distinct values is evaluated once (Φ(-v) = 1 - Φ(v)) and only within _SATURATE
    bandwidths, pairs further apart adding exactly 1 (or 0). ``use_table``: R's arithmetic
    instead (:func:`_sums_r`). Genes run in parallel; float32 input is widened per column.
    """
    m, n_genes = X.shape
    for g in numba.prange(n_genes):
        col = np.empty(m)
        for i in range(m):
            col[i] = X[i, g]
        if use_table:
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
        _pair_sums_exact(u * (_STEPS / bw[g]), cnt[: k + 1], coef, acc)
        for i in range(m):
            p = acc[which[i]] / m
            out[i, g] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
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
    if kcdf == "gaussian" and not sp.issparse(X):
        # dense input (float32 or float64) is read in place, column by column
        return _gaussian_logodds(X, bw, _PHI_HERMITE, _PHI_TABLE, r_compat, D)
    for cols, block in column_blocks(X):
        if kcdf == "gaussian":
            _gaussian_logodds(block, bw[cols], _PHI_HERMITE, _PHI_TABLE, r_compat, D[:, cols])
        elif kcdf == "poisson":
            D[:, cols] = _poisson_logodds(np.ascontiguousarray(block.T)).T
        else:
            D[:, cols] = _ecdf_logodds(np.ascontiguousarray(block.T)).T
    return D


@numba.njit(parallel=True, cache=True)
def _walk(D, set_idx, set_ptr, tau, max_diff, abs_ranking, tie_blocks, out):
    """Steps 2-3 for every sample (rows of D, in parallel) and every set (CSR-like)."""
    n_obs, n = D.shape
    n_sets = set_ptr.size - 1
    half = n / 2.0
    for s in numba.prange(n_obs):
        start = np.empty(n, np.int64)
        end = np.empty(n, np.int64)
        score = np.empty(n)
        neg = -D[s]
        order = np.argsort(neg, kind="mergesort")  # stable: ties keep the input order
        r = 0
        while r < n:
            e = r
            if tie_blocks:
                while e + 1 < n and neg[order[e + 1]] == neg[order[r]]:
                    e += 1
            acc = 0.0
            for q in range(r, e + 1):
                acc += abs(n - q - half)  # |n - (q+1) + 1 - n/2| for 0-based q
            acc /= e - r + 1
            for q in range(r, e + 1):
                g = order[q]
                start[g] = r
                end[g] = e
                score[g] = acc
            r = e + 1
        for t in range(n_sets):
            a = set_ptr[t]
            b = set_ptr[t + 1]
            k = b - a
            if k == 0 or k >= n:
                out[s, t] = np.nan
                continue
            idx = set_idx[a:b]
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
                before = hit_w / total - (blk - hits) * dec
                if before < mx_neg:
                    mx_neg = before
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
    set_idx = np.concatenate([new_index[p.genes] for p in plan.parts] or [np.zeros(0, np.int64)])
    set_ptr = np.zeros(len(plan.parts) + 1, dtype=np.int64)
    set_ptr[1:] = np.cumsum([p.genes.size for p in plan.parts])
    part_scores = np.empty((n_obs, len(plan.parts)))
    _walk(
        D,
        set_idx.astype(np.int64),
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
