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
step costs O(genes × samples²).

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

from ..errors import UsageError
from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import (
    CHUNK_BYTES,
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


@numba.njit(cache=True)
def _gaussian_logodds(G: np.ndarray, bw: np.ndarray, table: np.ndarray, use_table: bool):
    """G: genes × samples; returns log-odds of the Gaussian-kernel CDF, genes × samples."""
    n_genes, m = G.shape
    out = np.empty((n_genes, m))
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    for g in range(n_genes):
        h = bw[g]
        for j in range(m):
            acc = 0.0
            y = G[g, j]
            for i in range(m):
                v = (y - G[g, i]) / h
                if use_table:
                    if v < -_TABLE_MAX:
                        c = 0.0
                    elif v > _TABLE_MAX:
                        c = 1.0
                    else:
                        c = table[int(abs(v) / _TABLE_MAX * _TABLE_RES)]
                        if v < 0:
                            c = 1.0 - c
                else:
                    c = 0.5 * math.erfc(-v * inv_sqrt2)
                acc += c
            p = acc / m
            out[g, j] = -math.log((1.0 - p) / p) if p > 0.0 else -math.inf
    return out


def _poisson_logodds(G: np.ndarray) -> np.ndarray:
    """Poisson-kernel CDF log-odds for a genes × samples block of counts."""
    n_genes, m = G.shape
    out = np.empty((n_genes, m))
    q = np.floor(G + 1e-7)  # R's ppois floors its argument (with the same fuzz)
    lam = G + 0.5
    step = max(1, CHUNK_BYTES // (8 * m * m * 3))
    for start in range(0, n_genes, step):
        sl = slice(start, min(n_genes, start + step))
        p = pdtr(q[sl, :, None], lam[sl, None, :]).mean(axis=2)
        with np.errstate(divide="ignore"):
            out[sl] = -np.log((1.0 - p) / p)
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
    for cols, block in column_blocks(X):
        G = np.ascontiguousarray(block.T)
        if kcdf == "gaussian":
            D[:, cols] = _gaussian_logodds(G, sd[cols] / 4.0, _PHI_TABLE, r_compat).T
        elif kcdf == "poisson":
            D[:, cols] = _poisson_logodds(G).T
        else:
            D[:, cols] = _ecdf_logodds(G).T
    return D


@numba.njit(cache=True)
def _walk(D, set_idx, set_ptr, tau, max_diff, abs_ranking, tie_blocks, out):
    """Steps 2-3 for every sample (rows of D) and every set (CSR-like set_idx/set_ptr)."""
    n_obs, n = D.shape
    n_sets = set_ptr.size - 1
    half = n / 2.0
    start = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    score = np.empty(n)
    for s in range(n_obs):
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
