"""From a parsed table to an observations × genes :class:`~sigscore.io.expression.Expression`.

The axis whose names are recognised as gene identifiers is the gene axis (unless the format
or the caller fixes it); then duplicate genes are merged, values checked and the scale noted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError, UsageError
from ..genes import recognised_fraction
from .expression import (
    Expression,
    check_finite,
    detect_value_scale,
    merge_duplicate_genes,
)

_SPARSE_MIN_CELLS = 1_000_000
_MIN_GENE_FRACTION = 0.05
_MIN_GENE_COUNT = 10


@dataclass
class RawTable:
    """A parsed table before orientation: ``X`` is rows × columns as stored."""

    X: np.ndarray | sp.csr_matrix
    row_names: list[str]
    col_names: list[str]
    fixed_genes_axis: Literal["rows", "columns"] | None = None
    why_fixed: str = ""
    notes: list[str] = field(default_factory=list)


def feature_gene_names(names: list[str], ids: list[str] | None, notes: list[str]) -> list[str]:
    """Prefer symbols; fall back to IDs when far more of those are recognised."""
    if ids is None or names == ids:
        return names
    fr_names, _ = recognised(names)
    fr_ids, _ = recognised(ids)
    if fr_ids > fr_names + 0.2:
        notes.append(
            f"gene IDs used as names (symbols recognised {fr_names:.0%}, IDs {fr_ids:.0%})"
        )
        return ids
    notes.append("gene symbols used as names (feature IDs also present in the file)")
    return names


def keep_gene_expression(
    X: sp.csr_matrix, genes: list[str], types: list[str] | None, notes: list[str]
) -> tuple[sp.csr_matrix, list[str]]:
    if types is None or len(set(types)) <= 1:
        return X, genes
    keep = np.array([t == "Gene Expression" for t in types])
    if not keep.any():
        return X, genes
    notes.append(
        f"kept {int(keep.sum()):,} 'Gene Expression' features, dropped {int((~keep).sum()):,} "
        f"others ({', '.join(sorted(set(types) - {'Gene Expression'}))})"
    )
    return X[:, keep], [g for g, k in zip(genes, keep, strict=True) if k]


def recognised(names: Sequence[str]) -> tuple[float, int]:
    """(fraction, count) of names recognised as gene identifiers."""
    if len(names) == 0:
        return 0.0, 0
    frac = float(recognised_fraction(list(names)))
    return frac, round(frac * len(names))


def orient_raw(raw: RawTable, genes_axis: str, source: str) -> Expression:
    rows, cols = raw.row_names, raw.col_names
    fr_r, n_r = recognised(rows)
    fr_c, n_c = recognised(cols)
    ok_r = fr_r >= _MIN_GENE_FRACTION or n_r >= _MIN_GENE_COUNT
    ok_c = fr_c >= _MIN_GENE_FRACTION or n_c >= _MIN_GENE_COUNT
    stats = (
        f"{n_r:,} of {len(rows):,} row names and {n_c:,} of {len(cols):,} column names recognised"
    )
    if genes_axis == "auto":
        if not ok_r and not ok_c:
            seen_r = ", ".join(repr(n) for n in rows[:3])
            seen_c = ", ".join(repr(n) for n in cols[:3])
            raise InputError(
                f"no recognisable gene identifiers in rows or columns of {source} ({stats}); "
                f"first names seen: rows {seen_r}; columns {seen_c}; pass "
                "{opt:genes_axis=rows} or {opt:genes_axis=columns}, or check the ID type "
                "(symbols, Ensembl, Entrez or SYMBOL|ENTREZ are understood)",
                detail={"rows": rows[:5], "columns": cols[:5]},
            )
        if raw.fixed_genes_axis is not None:
            axis = raw.fixed_genes_axis
            why = raw.why_fixed
        else:
            axis = "rows" if (fr_r, n_r) > (fr_c, n_c) else "columns"
            why = "auto-detected"
    elif genes_axis in ("rows", "columns"):
        axis, why = genes_axis, "as requested"
    else:
        raise UsageError(f"genes_axis must be 'auto', 'rows' or 'columns', not {genes_axis!r}")
    n, tot = (n_r, len(rows)) if axis == "rows" else (n_c, len(cols))
    note = f"genes in {axis} ({n:,} of {tot:,} recognised; {why})"
    X = raw.X
    if axis == "rows":
        X = X.T.tocsr() if sp.issparse(X) else np.ascontiguousarray(X.T)
        obs, var = cols, rows
    else:
        obs, var = rows, cols
    expr = Expression(X, pd.Index(obs), pd.Index(var), source=source)
    expr.notes.append(note)
    expr.notes.extend(raw.notes)
    return expr


def orient(expr: Expression) -> Expression:
    """``expr`` (a table as given, rows × columns) with its gene axis found as for files.

    Used by :func:`sigscore.score` for DataFrames, with the files' recognition counts. A
    table's columns are genes by convention, and short name lists such as ``s1, s2`` are
    often gene aliases too, so the rows are taken as genes only when they are plausible
    gene names and either the columns are not, or the rows hold more recognised names at
    no less than half the columns' recognised fraction. When neither axis holds
    recognisable identifiers the table is kept as given, so custom gene sets with their
    own names can still match.
    """
    rows = [str(v) for v in expr.obs_names]
    cols = [str(v) for v in expr.var_names]
    fr_r, n_r = recognised(rows)
    fr_c, n_c = recognised(cols)
    ok_r = fr_r >= _MIN_GENE_FRACTION or n_r >= _MIN_GENE_COUNT
    ok_c = fr_c >= _MIN_GENE_FRACTION or n_c >= _MIN_GENE_COUNT
    if not ok_r and not ok_c:
        expr.notes.append("genes in columns (names on neither axis recognised; as given)")
        return expr
    flip = ok_r and (not ok_c or (n_r > n_c and fr_r >= fr_c / 2))
    raw = RawTable(expr.X, rows, cols, "rows" if flip else "columns", "auto-detected")
    out = orient_raw(raw, "auto", expr.source)
    out.notes = [*expr.notes, *out.notes]
    return out


_SCALE_NOTES = {
    "counts": "values look like raw counts (non-negative integers)",
    "log": "values look log-transformed",
    "zscore": "values look z-scored (centred near 0, negatives present)",
    "linear": "values look like linear-scale normalised expression (TPM/CPM/FPKM)",
}


def finalise(expr: Expression) -> Expression:
    source = expr.source
    if expr.shape[0] == 0 or expr.shape[1] == 0:
        raise InputError(f"{source}: no data ({expr.shape[0]} samples × {expr.shape[1]} genes)")
    empty = np.asarray([v == "" for v in expr.var_names])
    if empty.any():
        keep = np.flatnonzero(~empty)
        expr = Expression(
            expr.X[:, keep], expr.obs_names, expr.var_names[keep], source, None, expr.notes
        )
        expr.notes.append(f"dropped {int(empty.sum())} gene(s) with an empty name")
    if expr.shape[1] == 1:
        raise InputError(
            f"{source}: only 1 gene ({expr.var_names[0]!r}) across {expr.shape[0]} samples; "
            "signature scores need many genes: check the delimiter, the orientation "
            "({opt:genes_axis}) or that the whole matrix was exported"
        )
    if (np.asarray([v == "" for v in expr.obs_names])).any():
        i = int(np.flatnonzero([v == "" for v in expr.obs_names])[0])
        raise InputError(f"{source}: sample {i + 1} has an empty name; give every sample a name")
    if not expr.obs_names.is_unique:
        dup = expr.obs_names[expr.obs_names.duplicated()].unique()
        raise InputError(
            f"{source}: duplicated sample name(s): {', '.join(repr(d) for d in dup[:5])}"
            f"{' ...' if len(dup) > 5 else ''} ({len(dup)} in all); sample names must be "
            "unique: rename or remove the duplicates",
            detail={"duplicates": [str(d) for d in dup[:20]]},
        )
    check_finite(expr)
    if not expr.is_sparse and expr.X.size > _SPARSE_MIN_CELLS:
        nnz = int(np.count_nonzero(expr.X))
        if nnz < 0.5 * expr.X.size:
            expr.X = sp.csr_matrix(expr.X)
            expr.notes.append(
                f"stored sparse (CSR): {1 - nnz / expr.X.shape[0] / expr.X.shape[1]:.0%} zeros"
            )
    expr.value_scale = detect_value_scale(expr.X)
    if expr.value_scale in _SCALE_NOTES:
        expr.notes.append(_SCALE_NOTES[expr.value_scale])
    if not expr.var_names.is_unique:
        expr, merged = merge_duplicate_genes(expr, list(expr.var_names), "auto")
        examples = ", ".join(f"{k} ({len(v)}×)" for k, v in list(merged.items())[:5])
        msg = (
            f"{source}: {len(merged)} gene name(s) occur more than once and were merged "
            f"({expr.notes[-1].split(' by ')[-1]}): {examples}"
        )
        expr.notes.append(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    return expr
