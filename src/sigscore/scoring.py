"""``sigscore.score``: the one call that scores any expression input with any method.

Steps: convert the input to :class:`~sigscore.matrix.Expression`; harmonise its gene
identifiers (:mod:`sigscore.genes`); collapse genes that harmonise to the same symbol;
resolve each signature to column positions and report coverage; run the method over row
chunks sized by a memory budget (rank methods never see more than one chunk densified);
return a DataFrame whose ``attrs["sigscore"]`` holds the coverage report and a manifest.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from numbers import Integral
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import __version__
from .errors import CoverageError, InputError, UsageError, warn_user
from .genes.coverage import CoveragePolicy, CoverageReport, GeneMatches, build_report
from .matrix import Expression, as_expression, check_finite, merge_duplicate_genes
from .methods import GeneStats, IndexedSet, MethodSpec, get_method

DEFAULT_METHOD = "singscore"
#: Memory a row chunk may take while being scored (bytes), unless ``chunk_size`` is given.
DEFAULT_CHUNK_BYTES = 256 * 1024**2
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
    from .signatures import SignatureSet, load_signatures, read_signatures

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
    expr: Expression, id_type: str = "auto"
) -> tuple[Expression, GeneMatches, str]:
    """Rename columns to approved symbols, merging genes that share one.

    Returns the new expression, a :class:`~sigscore.coverage.GeneMatches` (gene -> column,
    plus what coverage reports) and the identifier type used. Rules:

    * a column matched only through an alias or another case is never merged into a column
      that names the same gene exactly (``PD-L1`` next to ``CD274``): it keeps its own name,
      unmatched, and a note says so; columns matched the same way (two Ensembl versions of one
      ID, ``IL6`` twice) are merged as :func:`~sigscore.matrix.merge_duplicate_genes` says;
    * names the gene table does not know keep their name and still meet set members of the
      same name, in every mode, so custom sets (probe IDs, ADT names) work;
    * names of another type than a *forced* ``id_type`` stay unmatched and are reported;
    * ``id_type="exact"``: names are taken as given, nothing is renamed or merged, and
      duplicated names are an :class:`~sigscore.errors.InputError`. A set member meets only
      its own name, or, when no column has it, the one column equal to it ignoring case
      (signature readers upper-case members; reported as a case match).

    Unrecognised columns keep their original name, so nothing the user sent is dropped from
    rank-based methods.
    """
    from .genes import RENAMED_HOW, harmonise, reported_how

    harm = harmonise(list(expr.var_names), id_type=id_type)
    if harm.id_type == "exact":
        exact = _exact_columns(expr)
        names = {q: q for q in harm.queries}
        return exact, GeneMatches(names, folded=_fold_unique(names)), "exact"
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
    merged_expr, merged = merge_duplicate_genes(expr, keys)
    columns: dict[str, str] = {}
    shown: dict[str, str] = {}
    hows: dict[str, str] = {}
    mismatched: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for q, sym, how, key in zip(harm.queries, harm.symbols, harm.how, keys, strict=True):
        if sym is not None and key == sym:
            if sym not in columns:
                columns[sym] = sym
                if sym in merged:
                    shown[sym] = " + ".join(merged[sym])
                elif q != sym:
                    shown[sym] = q
            kind = reported_how(q, sym, how)
            if kind is not None and sym not in hows:
                hows[sym] = kind
        elif q in harm.mismatched:
            mismatched.setdefault(harm.mismatched[q], q)
        elif sym is None and q and q not in harm.ambiguous:
            unknown.setdefault(q, key)
    recognised = tuple(columns)
    for q, key in unknown.items():  # matched as given; a gene symbol of the same name wins
        columns.setdefault(q, key)
    folded = _fold_unique(unknown)
    notes = merged_expr.notes
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
    return merged_expr, matches, harm.id_type


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
    expr, present, used_id_type = harmonise_columns(expr, id_type)
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
    from .io.read import read_matrix

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
    from .matrix import detect_value_scale

    if expr.value_scale is None:
        expr.value_scale = detect_value_scale(expr.X)
    if not warn or expr.value_scale != "linear":
        return
    X = expr.X
    if expr.is_lazy:
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
    from .io.orient import orient

    return orient(expr)


def _recognised_names(names: Any) -> tuple[int, list[str]]:
    from .genes import gene_table

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
        from .genes import harmonise

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


def chunk_rows_for(X: Any, budget_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk so that a chunk, densified with a few working copies, fits the budget.

    Sparse input (CSR in memory or a sparse row source) is never densified by the rank
    kernels, so its rows are costed by their stored values rather than by the gene count.
    """
    n_obs, n_var = X.shape
    width = float(max(n_var, 1))
    if sp.issparse(X):
        width = max(X.nnz / max(n_obs, 1), 1.0)
    elif getattr(X, "sparse", False) and hasattr(X, "mean_row_nnz"):
        width = max(X.mean_row_nnz(), 1.0)
    # A rank method holds roughly four float64/int64 arrays the size of the chunk.
    row_bytes = 4 * 8 * width
    rows = int(max(1, min(n_obs, budget_bytes // row_bytes)))
    if not getattr(X, "lazy", False):
        # in memory: at most 1/8 of the rows per chunk, so the working arrays stay below the
        # input's own size (peak RSS above baseline ≤ input size, issue 15)
        rows = min(rows, max(1024, -(-n_obs // 8)))
    return rows


def iter_row_chunks(n_obs: int, chunk_rows: int) -> Iterator[slice]:
    for start in range(0, n_obs, chunk_rows):
        yield slice(start, min(n_obs, start + chunk_rows))


def gene_stats(X: Any, chunk_rows: int | None = None) -> GeneStats:
    """Per-gene mean and sample variance over all rows, accumulated chunk by chunk.

    ``X`` may be in memory or any :mod:`sigscore.sources` row source (backed h5ad, zarr,
    Dask); the pass streams row blocks and, under a Dask client, runs them on its workers.
    """
    from .sources import as_source

    src = as_source(X)
    n_obs = src.shape[0]
    total, total_sq = src.column_sums(chunk_rows or chunk_rows_for(src))
    mean = total / n_obs
    var = (total_sq - n_obs * mean**2) / max(n_obs - 1, 1)
    return GeneStats(mean=mean, var=np.clip(var, 0.0, None), n_obs=n_obs)


def _progress(enabled: bool | None, total: int, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty() and total > 1
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rows", leave=False)


def run_method(
    X: Any,
    sets: list[IndexedSet],
    spec: MethodSpec,
    params: Mapping[str, Any],
    *,
    stats: GeneStats | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run ``spec`` over ``X`` (rowwise methods in row chunks) and apply its ``finalize``.

    ``X`` is an in-memory matrix or a :mod:`sigscore.sources` row source; rowwise methods
    stream its row blocks (Dask: one task per block on the active scheduler).
    """
    from .sources import as_source, is_lazy

    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1
    ):
        raise UsageError(
            f"chunk_size must be a whole number of rows ≥ 1 (or None for a size chosen by "
            f"memory), not {chunk_size!r}"
        )
    n_obs = X.shape[0]
    kwargs = dict(params)
    if spec.needs_gene_stats or stats is not None:
        kwargs["gene_stats"] = stats if stats is not None else gene_stats(X, chunk_size)
    if spec.prepare is not None:
        kwargs.update(spec.prepare(sets, **kwargs))
    if not is_rowwise(spec, stats is not None):
        # A method that needs every row at once: an out-of-core matrix is loaded here.
        scores = spec.run(as_source(X).to_memory() if is_lazy(X) else X, sets, **kwargs)
    else:
        src = as_source(X)
        rows_per_chunk = chunk_size or chunk_rows_for(src)
        bar = _progress(progress, n_obs, f"sigscore {spec.name}")
        done = [0]

        def advance(n_rows: int) -> None:
            done[0] += n_rows
            if bar is not None:
                bar.update(n_rows)
            if on_chunk is not None:
                on_chunk(done[0], n_obs)

        parts = src.map_chunks(
            partial(_run_rows, spec.run, sets, kwargs), rows_per_chunk, on_chunk=advance
        )
        if bar is not None:
            bar.close()
        scores = np.vstack(parts) if parts else np.empty((0, len(sets)))
    if spec.finalize is not None:
        scores = spec.finalize(scores, **params)
    return np.asarray(scores, dtype=np.float64)


def _run_rows(
    run: Callable[..., np.ndarray], sets: list[IndexedSet], kwargs: Mapping[str, Any], block: Any
) -> np.ndarray:
    """Score one row block (a module-level function so Dask workers can unpickle it)."""
    return np.asarray(run(block, sets, **kwargs), dtype=np.float64)


def is_rowwise(spec: MethodSpec, fixed_stats: bool) -> bool:
    """Whether rows can be scored chunk by chunk (given fixed reference stats or not)."""
    return spec.rowwise or (fixed_stats and spec.rowwise_with_stats)


def is_sample_independent(spec: MethodSpec, params: Mapping[str, Any], fixed_stats: bool) -> bool:
    """Whether a sample's score is the same alone or in any batch, for these parameters."""
    if spec.finalize is not None and params.get("normalize", False):
        return False
    if spec.needs_gene_stats or spec.rowwise_with_stats:
        # per-gene statistics from the batch make a score batch-relative; fixed ones do not
        return fixed_stats and is_rowwise(spec, fixed_stats)
    return spec.sample_independent


def manifest(
    prepared: PreparedInput, spec: MethodSpec, params: Mapping[str, Any], fixed_stats: bool
) -> dict[str, Any]:
    """What a result needs to be reproduced and cited."""
    sigset = prepared.signatures
    return {
        "sigscore_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": spec.name,
        "method_reference": spec.reference,
        "params": {
            k: (v if isinstance(v, str | int | float | bool | None) else repr(v))
            for k, v in params.items()
        },
        "sample_independent": is_sample_independent(spec, params, fixed_stats),
        "reference_gene_stats": fixed_stats,
        "signatures": {
            "hash": sigset.content_hash,
            "version": sigset.version,
            "tier": sigset.tier,
            "source": sigset.source,
            "n_sets": len(prepared.set_names),
        },
        "input": {
            "source": prepared.expr.source,
            "n_obs": int(prepared.expr.shape[0]),
            "n_genes": int(prepared.expr.shape[1]),
            "sparse": prepared.expr.is_sparse,
            "id_type": prepared.id_type,
            "value_scale": prepared.expr.value_scale or "unknown",
            "scale_expected": SCALE_EXPECTED.get(spec.name, ""),
            "notes": list(prepared.expr.notes),
        },
        "excluded_sets": prepared.coverage.excluded,
        "research_use_only": "Research use only; not a diagnostic.",
    }


def score(
    data: Any,
    gene_sets: Any = None,
    method: str = DEFAULT_METHOD,
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
    reference_stats: GeneStats | None = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Score every gene set for every observation.

    Parameters
    ----------
    data
        AnnData (obs × var), pandas/polars DataFrame, a numpy/scipy matrix with
        ``var_names``, or a file path / open file in any format :func:`sigscore.read_matrix`
        reads (``layer`` picks an h5ad layer).
    genes_axis
        ``"auto"`` (default) finds the gene axis of a DataFrame or file by which names are
        gene identifiers (as the readers do); ``"rows"`` / ``"columns"`` force it.
    gene_sets
        ``None`` for the shipped signatures (``tier`` "core" or "extended"), a
        ``SignatureSet``, a mapping ``{name: genes | {"up": [...], "down": [...]}}``, or a
        path to a .gmt/.yaml/.json file.
    method
        One of :data:`sigscore.methods.METHOD_NAMES`; ``**params`` are its parameters.
    reference_stats
        Fixed per-gene mean/variance (in the matrix's column order after harmonisation) for
        ``mean``/``module_score``/``zscore``; makes those methods sample-independent.

    Returns
    -------
    DataFrame of observations × sets (input order). Sets excluded by the coverage policy
    are NaN columns. ``result.attrs["sigscore"]`` = ``{"manifest": ..., "coverage": ...}``.
    """
    spec = get_method(method)
    full_params = spec.params(**params)
    prepared = prepare(
        data,
        gene_sets,
        tier=tier,
        id_type=id_type,
        coverage_policy=coverage_policy,
        context=context,
        layer=layer,
        use_raw=use_raw,
        genes_axis=genes_axis,
        var_names=var_names,
        obs_names=obs_names,
    )
    values = run_method(
        prepared.expr.X,
        prepared.sets,
        spec,
        full_params,
        stats=reference_stats,
        chunk_size=chunk_size,
        progress=progress,
    )
    result = pd.DataFrame(
        np.nan, index=prepared.expr.obs_names.copy(), columns=pd.Index(prepared.set_names)
    )
    result.loc[:, [s.name for s in prepared.sets]] = values
    result.index.name = "sample"
    result.attrs["sigscore"] = {
        "manifest": manifest(prepared, spec, full_params, reference_stats is not None),
        "coverage": prepared.coverage.to_records(),
    }
    return result
