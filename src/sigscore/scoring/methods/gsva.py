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
is neither row-wise nor sample-independent. It is a bulk method, and its memory stays a
fraction of the input: the log-odds (samples × genes) are never held whole. The set genes'
are computed first; then the other genes' come a block at a time (≤ 1/4 of the input's
bytes) and are placed among the set genes' values in each sample
(:class:`._gsva_common.SetTieCounter`, ~20 bytes per sample and set gene); dense input,
float32 included, is read in place, sparse input densified a column block at a time. The kernel
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
the first term is :data:`._gsva_kcdf.FAST_TOL` = 1e-6 (c ≈ 0.0041: ~6,400 grid points per gene at m = 1,000,
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

from collections.abc import Sequence

import numba
import numpy as np

from ...errors import UsageError
from ._base import GeneStats, IndexedSet, Matrix, MethodSpec
from ._gsva_common import (
    CONSTANT_SD,
    SetTieCounter,
    combine,
    expand_sets,
    gene_mean_sd,
    matrix_bytes,
    restrict_parts,
)
from ._gsva_kcdf import BLOCK_BYTES, LogOdds, check_poisson
from ._gsva_kcdf import logodds as logodds  # re-exported: step 1 as one matrix (tests)
from ._ranks import set_layout

KCDFS = ("gaussian", "poisson", "none", "fast")


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
        check_poisson(X)
    plan = expand_sets(sets)
    _, sd = gene_mean_sd(X)
    keep = sd >= CONSTANT_SD
    kept = np.flatnonzero(keep)
    if kept.size < 2:
        raise UsageError(
            f"gsva: fewer than 2 genes vary across the {n_obs} observations; nothing to rank"
        )
    step1 = LogOdds(X, kept, sd[kept], kcdf_key, r_compat)
    # re-index set genes onto the kept genes
    new_index = np.full(n_genes, -1, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    plan = restrict_parts(plan, keep)
    kept_parts = [IndexedSet(str(j), new_index[p.genes]) for j, p in enumerate(plan.parts)]
    layout = set_layout(kept_parts, kept.size)
    # the log-odds come a gene block at a time and are placed among the set genes' own
    # (computed first, bit for bit the same) in each sample: never a samples × genes matrix
    counter = SetTieCounter(
        step1.columns(layout.genes),
        layout,
        ordinal=r_compat,
        grid_bytes=min(BLOCK_BYTES, matrix_bytes(X) // 16),
    )
    if layout.size:
        for idx, block in step1.blocks(skip=layout.genes):
            counter.add(block, idx, fill=True)
            del block
    greater, equal, before = counter.result()
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
