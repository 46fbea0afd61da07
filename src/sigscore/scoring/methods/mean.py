"""mean: weighted mean of per-gene z-scores of a set, signed by direction.

For gene ``g`` with mean ``mu_g`` and standard deviation ``sd_g`` (``gene_stats``)::

    z_g   = (x_g - mu_g) / sd_g                  (0 for a constant gene, sd_g = 0)
    score = sum_g w_g * s_g * z_g / sum_g |w_g|

over the up genes (``s = +1``) and down genes (``s = -1``) of the set; weights ``w`` default
to 1. Constant genes still count in the denominator (their z is 0). The score is linear in
``x``, so it is computed as one sparse product ``X @ C`` and never densifies ``X``.

Batch dependence: the z-scores use ``gene_stats``. When the dispatcher passes statistics
over all scored observations, a sample's score depends on the batch it was scored with;
with a fixed reference (e.g. a reference cohort's means and sds) the method is
sample-independent. The dispatcher decides which statistics to pass.

Reference: the "combined z-score" of Lee E et al. (2008) Inferring pathway activity toward
precise disease classification. PLoS Comput Biol 4:e1000217. doi:10.1371/journal.pcbi.1000217
(here averaged rather than divided by sqrt(k), and signed by direction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from sigscore.errors import UsageError
from sigscore.genes.merge_jit import accumulate_member, group_scratch, group_value, sort_present
from sigscore.genes.merge_kernels import UnmergedRows

from ._base import GeneStats, IndexedSet, Matrix, MethodSpec


def _weights(s: IndexedSet) -> tuple[np.ndarray, np.ndarray]:
    wu = np.ones(s.up.size) if s.up_weights is None else np.asarray(s.up_weights, float)
    wd = np.ones(s.down.size) if s.down_weights is None else np.asarray(s.down_weights, float)
    if wu.shape != s.up.shape or wd.shape != s.down.shape:
        raise UsageError(f"mean: set {s.name!r} has weights that do not match its genes")
    if not (np.all(np.isfinite(wu)) and np.all(np.isfinite(wd))):
        raise UsageError(f"mean: set {s.name!r} has non-finite gene weights")
    return wu, wd


def coefficients(
    sets: Sequence[IndexedSet], gene_stats: GeneStats, n_genes: int
) -> tuple[sp.csc_matrix, np.ndarray]:
    """``(C, c0)`` such that ``score = X @ C - c0`` (``C``: genes × sets)."""
    mean = np.asarray(gene_stats.mean, dtype=np.float64)
    sd = np.sqrt(np.asarray(gene_stats.var, dtype=np.float64))
    if mean.shape != (n_genes,) or sd.shape != (n_genes,):
        raise UsageError(
            f"mean: gene_stats cover {mean.shape[0]} genes but the matrix has {n_genes}"
        )
    inv_sd = np.zeros(n_genes)
    ok = np.isfinite(sd) & (sd > 0)
    inv_sd[ok] = 1.0 / sd[ok]  # constant genes: z = 0
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    c0 = np.zeros(len(sets))
    for j, s in enumerate(sets):
        wu, wd = _weights(s)
        total = np.abs(wu).sum() + np.abs(wd).sum()
        if total == 0:
            raise UsageError(f"mean: set {s.name!r} has no genes with non-zero weight")
        genes = np.concatenate([s.up, s.down]).astype(np.int64)
        coef = np.concatenate([wu, -wd]) * inv_sd[genes] / total
        rows.append(genes)
        cols.append(np.full(genes.size, j))
        vals.append(coef)
        c0[j] = float(np.dot(coef, mean[genes]))
    C = sp.csc_matrix(
        (
            np.concatenate(vals) if vals else np.zeros(0),
            (
                np.concatenate(rows) if rows else np.zeros(0, int),
                np.concatenate(cols) if cols else np.zeros(0, int),
            ),
        ),
        shape=(n_genes, len(sets)),
    )  # duplicate (gene, set) entries are summed, i.e. a gene in up and down cancels
    return C, c0


@numba.njit(parallel=True, cache=True)
def _csr_times_coef(data, indices, indptr, slot, coef, out):
    """out[r] = Σ over row r's stored values x at genes with a coefficient row: x · coef."""
    k = coef.shape[1]
    for r in numba.prange(indptr.size - 1):
        for p in range(indptr[r], indptr[r + 1]):
            s = slot[indices[p]]
            if s >= 0:
                x = float(data[p])
                for j in range(k):
                    out[r, j] += x * coef[s, j]


#: Rows per chunk of :func:`_unmerged_times_coef` (each chunk allocates its own scratch).
_ROWS_PER_CHUNK = 256


@numba.njit(cache=True)
def _add_group(red, s, size, op, vals, group_slot, coef, out, r):
    """Group ``s``'s value in row ``r`` times its coefficients, as the merged row holds it:
    rounded to the input's type (``vals``), absent when zero."""
    v = group_value(red, s, size, op)
    if v != 0.0 and group_slot[s] >= 0:
        vals[0] = v
        x = float(vals[0])
        for j in range(coef.shape[1]):
            out[r, j] += x * coef[group_slot[s], j]


@numba.njit(parallel=True, cache=True)
def _unmerged_times_coef(
    data, indices, indptr, target, group_code, size, op, members, in_slot, group_slot, coef, out
):
    """:func:`_csr_times_coef` of the merged rows, read from the raw rows (a merge plan:
    ``target``, ``group_code``, ``size``, ``op``), the same products added in the same order:
    a row's groups with coefficients (input columns ``members``, ascending) are reduced first
    (a binary search per member), then each is added where its output column falls among
    the singles (``in_slot``: a single input column's coefficient row, else -1; ``group_slot``:
    a group's). Returns False if a row's columns are not strictly increasing."""
    n_rows = indptr.size - 1
    n_chunks = (n_rows + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    bad = np.zeros(n_chunks, np.bool_)
    for ch in numba.prange(n_chunks):
        red, seen, present, vals, _ = group_scratch(
            max(group_code.size, 1), data.dtype, indices.dtype
        )
        for r in range(ch * _ROWS_PER_CHUNK, min(n_rows, (ch + 1) * _ROWS_PER_CHUNK)):
            lo, hi = indptr[r], indptr[r + 1]
            n = 0
            pos = lo
            for c in members:  # in column order, as the merge reduces them
                a = pos + np.searchsorted(indices[pos:hi], c)
                if a < hi and indices[a] == c:
                    n = accumulate_member(red, seen, present, n, -1 - target[c], data[a], r)
                    a += 1
                pos = a
            sort_present(present, n)  # by output column
            i = 0
            prev = -1
            for p in range(lo, hi):
                c = indices[p]
                if c <= prev:
                    bad[ch] = True
                    break
                prev = c
                s = in_slot[c]
                if s < 0:
                    continue
                while i < n and group_code[present[i]] < target[c]:
                    _add_group(red, present[i], size, op, vals, group_slot, coef, out, r)
                    i += 1
                x = float(data[p])
                for j in range(coef.shape[1]):
                    out[r, j] += x * coef[s, j]
            if bad[ch]:
                break
            while i < n:
                _add_group(red, present[i], size, op, vals, group_slot, coef, out, r)
                i += 1
    return not bad.any()


def _coefficient_rows(C: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(slot, coef)``: each gene's row of the dense ``coef`` (genes with a coefficient
    in any set), -1 for the others."""
    Cr = sp.csr_matrix(C)
    genes = np.flatnonzero(np.diff(Cr.indptr))
    slot = np.full(Cr.shape[0], -1, dtype=np.int64)
    slot[genes] = np.arange(genes.size)
    return slot, Cr[genes].toarray()


def linear_scores(X: Matrix | UnmergedRows, C: sp.spmatrix) -> np.ndarray:
    """``X @ C`` as a dense (n_obs × n_sets) array without densifying a sparse ``X``.

    Sparse rows go through one pass over their stored values (float32 read as is) against
    the dense coefficient rows of the few genes that have any; scipy's sparse × sparse
    product was most of module_score's time. Rows whose duplicated genes are still to be
    merged (:class:`~sigscore.genes.merge_kernels.UnmergedRows`) are merged as they are
    read, with the merged rows' sums bit for bit.
    """
    if isinstance(X, UnmergedRows):
        return _unmerged_scores(X, C)
    if not sp.issparse(X):
        return np.asarray(np.asarray(X, dtype=np.float64) @ C.toarray())
    M = sp.csr_matrix(X)
    slot, coef = _coefficient_rows(C)
    out = np.zeros((M.shape[0], C.shape[1]))
    _csr_times_coef(M.data, M.indices, M.indptr, slot, coef, out)
    return out


def _unmerged_scores(X: UnmergedRows, C: sp.spmatrix) -> np.ndarray:
    rows, plan = X.rows, X.plan
    slot, coef = _coefficient_rows(C)
    single = plan.target >= 0
    in_slot = np.where(single, slot[np.where(single, plan.target, 0)], -1)
    group_slot = slot[plan.group_code]
    # only the members of groups with coefficients are looked up in each row
    members = plan.members[group_slot[-1 - plan.target[plan.members]] >= 0]
    out = np.zeros((rows.shape[0], C.shape[1]))
    args = (plan.target, plan.group_code, plan.group_size, plan.op, members, in_slot)
    if _unmerged_times_coef(rows.data, rows.indices, rows.indptr, *args, group_slot, coef, out):
        return out
    return linear_scores(X.merged(), C)  # rows not canonical: merged (and sorted) first


def prepare(sets: Sequence[IndexedSet], *, gene_stats: GeneStats | None = None) -> dict[str, Any]:
    """The linear coefficients, once per call (the dispatcher reuses them per chunk)."""
    if gene_stats is None:
        raise UsageError("mean needs gene_stats (per-gene mean and variance); none were given")
    return {"linear": coefficients(sets, gene_stats, gene_stats.mean.shape[0])}


def run(
    X: Matrix,
    sets: Sequence[IndexedSet],
    *,
    gene_stats: GeneStats | None = None,
    linear: tuple[Any, np.ndarray] | None = None,
) -> np.ndarray:
    """Signed, weighted mean z-score per set, shape ``(n_obs, n_sets)``."""
    C, c0 = linear if linear is not None else prepare(sets, gene_stats=gene_stats)["linear"]
    if C.shape[0] != X.shape[1]:
        raise UsageError(
            f"mean: gene_stats cover {C.shape[0]} genes but the matrix has {X.shape[1]}"
        )
    return linear_scores(X, C) - c0


SPEC = MethodSpec(
    name="mean",
    run=run,
    summary="mean of per-gene z-scores of the set, signed by direction, weighted",
    reference="Lee et al. 2008, PLoS Comput Biol, doi:10.1371/journal.pcbi.1000217 (z-scores)",
    rowwise=True,
    sample_independent=False,
    defaults={},
    needs_gene_stats=True,
    prepare=prepare,
    accepts_weights=True,
    merges_in_kernel=True,
)
