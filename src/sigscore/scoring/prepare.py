"""Everything :func:`sigscore.score` does before a method runs.

Convert the input to :class:`~sigscore.io.expression.Expression` (reading paths, finding the
gene axis); check values and scale; harmonise gene identifiers (:mod:`sigscore.genes`) and
collapse genes that harmonise to the same symbol; resolve each signature to column positions
and report coverage, explaining why when nothing can be scored.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import CoverageError, InputError, UsageError, warn_user
from ..genes.coverage import CoveragePolicy, CoverageReport, GeneMatches, build_report
from ..io.expression import (
    Expression,
    as_expression,
    check_finite,
    detect_value_scale,
    duplicate_groups,
    merge_duplicate_genes,
)
from ..io.sources import RowSource
from .methods import IndexedSet

GenesAxis = Literal["auto", "columns", "rows"]


@dataclass
class PreparedInput:
    """A matrix with harmonised, de-duplicated gene columns and sets resolved to positions."""

    expr: Expression
    sets: list[IndexedSet]  # scoreable sets only
    set_names: list[str]  # all sets, in signature order (excluded ones give NaN columns)
    coverage: CoverageReport
    signatures: Any  # SignatureSet
    id_type: str


def resolve_signatures(gene_sets: Any = None, tier: str = "extended") -> Any:
    """A :class:`~sigscore.signatures.SignatureSet` from ``None`` (shipped), a set, mapping or path."""
    from ..signatures import SignatureSet, load_signatures, read_signatures

    if gene_sets is None:
        return load_signatures(tier=tier)
    if isinstance(gene_sets, SignatureSet):
        return gene_sets
    if isinstance(gene_sets, str | Path | Mapping):
        return read_signatures(gene_sets, tier=tier)
    raise UsageError(
        f"gene_sets must be None (shipped signatures), a SignatureSet, a mapping or a path "
        f"(.gmt/.yaml/.json), not {type(gene_sets).__name__}"
    )


def harmonise_columns(
    expr: Expression, id_type: str = "auto", *, defer_merge: bool = False
) -> tuple[Expression, GeneMatches, str]:
    """Rename columns to approved symbols, merging genes that share one.

    Returns the new expression, a :class:`~sigscore.coverage.GeneMatches` (gene -> column,
    plus what coverage reports) and the identifier type used. Rules:

    * a column matched only through an alias or another case is never merged into a column
      that names the same gene exactly (``PD-L1`` next to ``CD274``): it keeps its own name,
      unmatched, and a note says so; columns matched the same way (two Ensembl versions of one
      ID, ``IL6`` twice) are merged as :func:`~sigscore.io.expression.merge_duplicate_genes` says;
    * names the gene table does not know keep their name and still meet set members of the
      same name, in every mode, so custom sets (probe IDs, ADT names) work;
    * names of another type than a *forced* ``id_type`` stay unmatched and are reported;
    * ``id_type="exact"``: names are taken as given, nothing is renamed or merged, and
      duplicated names are an :class:`~sigscore.errors.InputError`. A set member meets only
      its own name, or, when no column has it, the one column equal to it ignoring case
      (signature readers upper-case members; reported as a case match).

    Unrecognised columns keep their original name, so nothing the user sent is dropped from
    rank-based methods. ``defer_merge``: merged columns of an in-memory matrix are merged as
    the scoring loop reads it (see :func:`~sigscore.io.expression.merge_duplicate_genes`),
    so no merged copy of the whole matrix is made.
    """
    plan = _column_plan(tuple(expr.var_names.tolist()), id_type)
    if plan.id_type == "exact":
        return _exact_columns(expr), plan.matches, "exact"
    merged_expr, _ = merge_duplicate_genes(expr, plan.keys, defer=defer_merge)
    merged_expr.notes.extend(plan.notes)
    return merged_expr, plan.matches, plan.id_type


@dataclass(frozen=True)
class _ColumnPlan:
    """What harmonising a list of column names decides, whatever the values: merge keys,
    the matches coverage reports, the notes, the identifier type used."""

    id_type: str
    keys: tuple[str, ...]
    matches: GeneMatches
    notes: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def _column_plan(names: tuple[str, ...], id_type: str) -> _ColumnPlan:
    """The plan for these names, remembered for the last few name lists as harmonisation
    is: scoring the same genes again (a service, a notebook) then skips ~10 ms of name work
    per call for TCGA-style names. Everything returned is shared, so never mutated."""
    from ..genes import RENAMED_HOW, harmonise, reported_how

    harm = harmonise(list(names), id_type=id_type)
    if harm.id_type == "exact":
        given = {q: q for q in harm.queries}
        return _ColumnPlan("exact", (), GeneMatches(given, folded=_fold_unique(given)), ())
    exact_named = {
        s for s, h in zip(harm.symbols, harm.how, strict=True) if s and h not in RENAMED_HOW
    }
    keys: list[str] = []
    kept_apart: dict[str, str] = {}  # input name -> the gene it would have been merged into
    for q, sym, how in zip(harm.queries, harm.symbols, harm.how, strict=True):
        if sym is not None and not (how in RENAMED_HOW and sym in exact_named):
            keys.append(sym)
            continue
        if sym is not None:
            kept_apart[q] = sym
        # an unmatched name equal to a matched gene's symbol (STAT3 in a forced-Ensembl file
        # that also has STAT3's ENSG) must not merge with it
        keys.append(q if q not in exact_named else f"{q} [unmatched]")
    merged = duplicate_groups(names, keys)
    columns: dict[str, str] = {}
    shown: dict[str, str] = {}
    hows: dict[str, str] = {}
    mismatched: dict[str, str] = {}
    unknown: dict[str, str] = {}
    harm_mismatched, harm_ambiguous = harm.mismatched, harm.ambiguous  # ~20k lookups each
    for q, sym, how, key in zip(harm.queries, harm.symbols, harm.how, keys, strict=True):
        if sym is not None and key == sym:
            if sym not in columns:
                columns[sym] = sym
                if sym in merged:
                    shown[sym] = " + ".join(merged[sym])
                elif q != sym:
                    shown[sym] = q
            if sym not in hows:  # the first column's kind is kept: ask only until one is
                kind = reported_how(q, sym, how)
                if kind is not None:
                    hows[sym] = kind
        elif q in harm_mismatched:
            mismatched.setdefault(harm_mismatched[q], q)
        elif sym is None and q and q not in harm_ambiguous:
            unknown.setdefault(q, key)
    recognised = tuple(columns)
    for q, key in unknown.items():  # matched as given; a gene symbol of the same name wins
        columns.setdefault(q, key)
    folded = _fold_unique(unknown)
    notes: list[str] = []
    if merged:
        examples = ", ".join(f"{k} ← {' + '.join(v)}" for k, v in list(merged.items())[:5])
        notes.append(
            f"{len(merged)} gene(s) shared a symbol after harmonisation and were merged: {examples}"
        )
    if kept_apart:
        examples = ", ".join(f"{q} ({s})" for q, s in list(kept_apart.items())[:5])
        notes.append(
            f"{len(kept_apart)} column(s) name a gene by an alias or in another case while the "
            f"matrix also has its exact name; they were kept apart, not merged: {examples}"
        )
    if harm.ambiguous:
        amb = ", ".join(f"{q} → {'/'.join(c)}" for q, c in list(harm.ambiguous.items())[:5])
        notes.append(f"{len(harm.ambiguous)} ambiguous alias(es) left unmatched: {amb}")
    if harm.mismatched:
        ex = ", ".join(f"{q} ({s})" for q, s in list(harm.mismatched.items())[:5])
        notes.append(
            f"id_type {harm.id_type!r} was requested; {len(harm.mismatched)} identifier(s) of "
            f"another type were not matched: {ex}"
        )
    matches = GeneMatches(columns, recognised, shown, hows, mismatched, folded)
    return _ColumnPlan(harm.id_type, tuple(keys), matches, tuple(notes))


def _fold_unique(names: Mapping[str, str]) -> dict[str, str]:
    """Upper-cased name -> column key, for names no other name equals ignoring case.

    Signature readers upper-case set members (HGNC style), so ``1007_s_at`` in a GMT arrives
    as ``1007_S_AT``; this lets it meet its column (coverage reports it as a case match).
    """
    by_upper: dict[str, set[str]] = {}
    for name, key in names.items():
        by_upper.setdefault(name.upper(), set()).add(key)
    return {u: next(iter(ks)) for u, ks in by_upper.items() if len(ks) == 1}


def _exact_columns(expr: Expression) -> Expression:
    """``expr`` with its names as given; duplicated names are an error that names them."""
    names = pd.Index([str(n) for n in expr.var_names])
    if not names.is_unique:
        dup = list(dict.fromkeys(names[names.duplicated()]))
        shown = ", ".join(repr(d) for d in dup[:10]) + (" ..." if len(dup) > 10 else "")
        raise InputError(
            f"{expr.source}: id_type 'exact' matches identifiers as given, so each must be "
            f"unique, but {len(dup)} appear more than once: {shown}. Make them unique or use "
            "another id_type (which merges duplicates)"
        )
    return Expression(expr.X, expr.obs_names, names, expr.source, expr.value_scale, expr.notes)


def prepare(
    data: Any,
    gene_sets: Any = None,
    *,
    tier: str = "extended",
    id_type: str = "auto",
    coverage_policy: CoveragePolicy | Mapping[str, Any] | None = None,
    context: Literal["up", "exclude"] = "up",
    layer: str | None = None,
    use_raw: bool = False,
    genes_axis: GenesAxis = "auto",
    var_names: Any = None,
    obs_names: Any = None,
    warn: bool = True,
) -> PreparedInput:
    """Everything :func:`score` does before running a method."""
    policy = CoveragePolicy.coerce(coverage_policy)
    expr = to_expression(
        data,
        layer=layer,
        use_raw=use_raw,
        genes_axis=genes_axis,
        var_names=var_names,
        obs_names=obs_names,
    )
    if expr.shape[0] == 0 or expr.shape[1] == 0:
        raise InputError(
            f"{expr.source}: the matrix is empty ({expr.shape[0]} samples × {expr.shape[1]} genes); "
            "nothing to score"
        )
    check_finite(expr)
    _check_scale(expr, warn)
    sigset = resolve_signatures(gene_sets, tier)
    expr, present, used_id_type = harmonise_columns(expr, id_type, defer_merge=True)
    column = {name: i for i, name in enumerate(expr.var_names)}
    specs = sigset.gene_sets(context=context)
    report = build_report(
        {name: list(spec.up) + list(spec.down) for name, spec in specs.items()},
        present,
        policy,
        warn=warn,
    )
    sets: list[IndexedSet] = []
    for name, spec in specs.items():
        if report[name].status == "excluded":
            continue
        up = [
            (column[present.column(g)], w)
            for g, w in zip(spec.up, spec.up_weights, strict=True)
            if g in present
        ]
        down = [
            (column[present.column(g)], w)
            for g, w in zip(spec.down, spec.down_weights, strict=True)
            if g in present
        ]
        sets.append(
            IndexedSet(
                name=name,
                up=np.array([i for i, _ in up], dtype=np.int64),
                down=np.array([i for i, _ in down], dtype=np.int64),
                up_weights=np.array([w for _, w in up], dtype=np.float64),
                down_weights=np.array([w for _, w in down], dtype=np.float64),
            )
        )
    if not sets:
        genes = {g for spec in specs.values() for g in (*spec.up, *spec.down)}
        raise _no_coverage_error(expr, present, used_id_type, id_type, report, genes)
    return PreparedInput(expr, sets, list(specs), report, sigset, used_id_type)


def _read_path(data: Any, genes_axis: GenesAxis, layer: str | None) -> Expression:
    """A path or an open binary/text file, read with :func:`sigscore.readers.read_matrix`."""
    from ..io.read import read_matrix

    if isinstance(data, str | os.PathLike):
        return read_matrix(data, genes_axis=genes_axis, layer=layer)
    name = Path(str(getattr(data, "name", "") or "stream")).name
    with tempfile.TemporaryDirectory(prefix="sigscore-stream-") as tmp:
        path = Path(tmp) / (name or "stream")
        # The readers sniff content and may need to seek: spool the stream to disk first.
        with open(path, "wb") as out:
            while block := data.read(1 << 20):
                out.write(block.encode("utf-8") if isinstance(block, str) else block)
        return read_matrix(path, genes_axis=genes_axis, layer=layer)


#: What each method expects of the values (stated in README and ``sigscore score --help``).
SCALE_EXPECTED = {
    "singscore": "any scale (ranks within each sample: log or linear give the same scores)",
    "ucell": "any scale (ranks within each cell)",
    "aucell": "any scale (ranks within each cell)",
    "ssgsea": "any scale (ranks within each sample)",
    "gsva": "log-scale expression (kcdf='gaussian'); raw counts with kcdf='poisson'",
    "zscore": "log-scale expression (per-gene z-scores)",
    "plage": "log-scale expression (per-gene z-scores, then SVD)",
    "module_score": "log-normalised expression (as scanpy's score_genes)",
    "mean": "log-scale expression (per-gene z-scores)",
}


def _check_scale(expr: Expression, warn: bool) -> None:
    """Detect the value scale (recorded in the manifest); warn about impossible values.

    Negative values in a matrix whose range looks linear (TPM/CPM/FPKM, max > 50) cannot
    be expression on that scale: an export or normalisation error, said rather than scored
    silently as if log-transformed.
    """
    if expr.value_scale is None:
        expr.value_scale = detect_value_scale(expr.X)
    if not warn or expr.value_scale != "linear":
        return
    X = expr.X
    if isinstance(X, RowSource):
        X = X.sample_block()
    values = X.data if sp.issparse(X) else np.asarray(X)
    low = float(values.min()) if values.size else 0.0
    if low < 0:
        n_neg = int((values < 0).sum())
        warn_user(
            f"{expr.source}: {n_neg:,} negative value(s) (lowest {low:.4g}) in a matrix whose "
            "range looks linear (TPM/CPM/FPKM); expression on that scale cannot be negative: "
            "check the export or normalisation (rank methods score it anyway)"
        )


def to_expression(
    data: Any,
    *,
    layer: str | None = None,
    use_raw: bool = False,
    genes_axis: GenesAxis = "auto",
    var_names: Any = None,
    obs_names: Any = None,
) -> Expression:
    """Any accepted input as observations × genes, finding the gene axis when ``"auto"``.

    Paths and file objects go through :func:`sigscore.readers.read_matrix`; AnnData keeps
    its obs × var layout; a DataFrame's gene axis is the one whose names are recognised as
    gene identifiers, decided by the readers' rule (:func:`sigscore.readers.orient`); a
    numpy/scipy matrix's is the one as long as ``var_names``.
    """
    if genes_axis not in ("auto", "columns", "rows"):
        raise UsageError(f"genes_axis must be 'auto', 'rows' or 'columns', not {genes_axis!r}")
    if isinstance(data, str | os.PathLike) or (
        hasattr(data, "read") and not isinstance(data, Expression)
    ):
        if use_raw or var_names is not None or obs_names is not None:
            raise UsageError("use_raw=, var_names= and obs_names= do not apply to a file")
        return _read_path(data, genes_axis, layer)
    kw = {"layer": layer, "use_raw": use_raw, "var_names": var_names, "obs_names": obs_names}
    if genes_axis != "auto":
        return as_expression(data, genes_axis=genes_axis, **kw)
    if isinstance(data, Expression) or type(data).__name__ == "AnnData":
        return as_expression(data, **kw)  # obs × var by construction
    shape = getattr(data, "shape", None)
    if var_names is not None and shape is not None and len(shape) == 2:
        n = len(var_names)
        rows = n == shape[0] and n != shape[1]
        return as_expression(data, genes_axis="rows" if rows else "columns", **kw)
    expr = as_expression(data, genes_axis="columns", **kw)
    if not isinstance(data, pd.DataFrame) and not type(data).__module__.startswith("polars"):
        return expr
    from ..io.orient import orient

    return orient(expr)


def _recognised_names(names: Any) -> tuple[int, list[str]]:
    from ..genes import gene_table

    table = gene_table()
    known = [str(n) for n in names if table.is_known(str(n))]
    return len(known), known[:3]


def _no_coverage_error(
    expr: Expression,
    present: Mapping[str, str],
    used_id_type: str,
    id_type: str,
    report: CoverageReport,
    genes: set[str],
) -> CoverageError:
    """Why no module could be scored, as far as the data shows, with advice.

    Three causes are told apart: a transposed matrix (the sample names are the gene
    identifiers), identifiers of a type not understood (or not the type forced), and a gene
    panel that simply lacks the signature genes. Options are written as ``{opt:...}`` so
    each interface spells them its own way (:meth:`SigscoreError.message_for`).
    """
    n_var, n_obs = expr.shape[1], expr.shape[0]
    n_known = len(present)
    in_file = sorted(genes & set(present))
    cause: str
    n_obs_known, obs_examples = _recognised_names(expr.obs_names)
    if n_obs_known > max(n_known, 0) and (n_obs_known >= 10 or n_obs_known >= 0.05 * n_obs):
        axis = next((n for n in expr.notes if n.startswith("genes in ")), "")
        other = "columns" if "genes in rows" in axis else "rows"
        cause = "transposed"
        why = (
            f"the matrix looks transposed: {n_obs_known:,} of the {n_obs:,} names taken as samples are "
            f"gene identifiers (e.g. {', '.join(obs_examples)}) while {n_known:,} of the "
            f"{n_var:,} column names taken as genes are. Pass {{opt:genes_axis={other}}} "
            "(or let it be detected with {opt:genes_axis=auto})"
        )
    elif n_known < 0.5 * n_var:
        from ..genes import harmonise

        cause = "id_type"
        seen = ", ".join(repr(str(v)) for v in expr.var_names[:3])
        auto = harmonise([str(v) for v in expr.var_names], id_type="auto")
        n_auto = sum(s is not None for s in auto.symbols)
        if id_type not in ("auto", None) and n_auto > n_known:
            why = (
                f"the identifiers were read as {id_type!r} but look like {auto.id_type!r}: "
                f"{n_auto:,} of {n_var:,} are recognised that way, {n_known:,} as {id_type!r}. "
                "Pass {opt:id_type=auto} or the matching type"
            )
        else:
            why = (
                f"only {n_known:,} of {n_var:,} gene identifiers were recognised (first: {seen}; "
                "HGNC symbols, Ensembl, Entrez, SYMBOL|ENTREZ and mouse symbols are understood). "
                "If they are another type, convert them or name the type with {opt:id_type}"
            )
    else:
        cause = "panel"
        best = max((r.n_found for r in report.modules), default=0)
        lower = f", or accept modules with fewer genes ({{opt:min_genes={best}}})" if best else ""
        why = (
            f"{n_known:,} of the {n_var:,} genes are recognised, but the file holds only "
            f"{len(in_file)} of the {len(genes)} signature genes"
            f"{' (' + ', '.join(in_file[:10]) + (' ...' if len(in_file) > 10 else '') + ')' if in_file else ''}"
            f": it looks like a targeted panel without the signatures' genes. Score a "
            f"genome-wide matrix{lower}"
        )
    message = f"{expr.source}: no signature could be scored: {why}.\n{report}"
    return CoverageError(
        message,
        detail={
            "coverage": report.to_records(),
            "cause": cause,
            "signature_genes_in_file": in_file,
            "n_signature_genes": len(genes),
            "id_type": used_id_type,
        },
    )
