"""``score``, ``index``, ``reference build`` and ``report``: expression files in, results out.

Options become library calls through :mod:`sigscore.scoring.options` and
:func:`sigscore.index.options.score_or_index`, the translation the service uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ...genes import check_id_type
from ..errors import handle_errors, report_written
from ..inputs import load_definition, load_sigset, per_input, read_input
from ..options import (
    DefinitionOpt,
    FormatOpt,
    GenesAxisOpt,
    IdTypeOpt,
    InputsArg,
    LayerOpt,
    ManifestOpt,
    MethodOpt,
    MinGenesOpt,
    OutOpt,
    ParamOpt,
    ProgressOpt,
    ReferenceOpt,
    SignaturesOpt,
    TierOpt,
    check_inputs,
    check_method,
    check_tier,
    checked_args,
)
from ..output import emit_results, log_coverage


@handle_errors
def score(
    inputs: InputsArg,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    output: OutOpt = None,
    fmt: FormatOpt = "csv",
    param: ParamOpt = None,
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Rows scored at a time (memory bound).")
    ] = None,
    progress: ProgressOpt = None,
    manifest: ManifestOpt = None,
) -> None:
    """Score every signature module for every sample (rows = samples, columns = modules)."""
    from ...scoring import DEFAULT_METHOD
    from ...scoring.options import score_options

    paths, method, tier, params = checked_args(inputs, method, tier, param, DEFAULT_METHOD)
    id_type = check_id_type(id_type)  # before reading any file
    sigset = load_sigset(tier, signatures)  # read once, not once per input

    def one(expr: Any) -> Any:
        df = score_options(
            expr,
            signatures=sigset,
            method=method,
            params=params,
            tier=tier,
            id_type=id_type,
            min_genes=min_genes,
            chunk_size=chunk_size,
            progress=progress,
        )
        log_coverage(df)
        return df

    results = per_input(paths, one, genes_axis=genes_axis, layer=layer)
    report_written(emit_results(results, output, fmt, "scores", manifest))


@handle_errors
def index(
    inputs: InputsArg,
    output: OutOpt = None,
    reference: ReferenceOpt = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    fmt: FormatOpt = "csv",
    param: ParamOpt = None,
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    progress: ProgressOpt = None,
    manifest: ManifestOpt = None,
) -> None:
    """Sorafenib-resistance index per sample, with per-module contributions and flags."""
    paths, method, tier, params = checked_args(inputs, method, tier, param)
    id_type = check_id_type(id_type)
    from ...index.options import score_or_index
    from ...index.reference import Reference

    # read the signature set, definition and reference once, not once per input
    sigset = load_sigset(tier, signatures)
    definition_obj = load_definition(tier, definition, signatures, sigset)
    reference_obj = Reference.load(reference) if reference is not None else None

    def one(expr: Any) -> Any:
        return score_or_index(
            expr,
            index=True,
            signatures=sigset,
            method=method,
            reference=reference_obj,
            definition=definition_obj,
            params=params,
            tier=tier,
            id_type=id_type,
            min_genes=min_genes,
            progress=progress,
        )

    results = per_input(paths, one, genes_axis=genes_axis, layer=layer)
    report_written(emit_results(results, output, fmt, "index", manifest))


@handle_errors
def reference_build(
    cohort: Annotated[
        list[Path], typer.Argument(help="Expression file(s) of the reference cohort.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Reference JSON to write.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Cohort name stored in the file.")
    ] = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    id_type: IdTypeOpt = "auto",
    min_genes: MinGenesOpt = None,
    progress: ProgressOpt = None,
) -> None:
    """Score a cohort and save its score distributions (no expression data) as JSON.

    Several files are pooled into one cohort (same genes and processing expected).
    """
    import pandas as pd

    from ...index.options import score_or_index
    from ...index.reference import Reference

    paths = check_inputs(cohort)
    method = check_method(method)
    id_type = check_id_type(id_type)
    frames = []
    for path in paths:
        expr = read_input(path, genes_axis=genes_axis, layer=layer)
        frames.append(
            score_or_index(
                expr,
                index=True,
                signatures=signatures,
                method=method,
                definition=definition,
                tier=tier,
                id_type=id_type,
                min_genes=min_genes,
                progress=progress,
            )
        )
    pooled = pd.concat(frames)
    pooled.attrs = frames[0].attrs  # same definition/method for every file
    ref = Reference.build(pooled, name=name or ", ".join(p.name for p in paths))
    saved = ref.save(output)
    n = len(pooled)
    typer.echo(f"reference {ref.name!r}: {n} samples, {len(ref.modules)} modules")
    report_written([Path(saved or output)])


@handle_errors
def report(
    input: Annotated[Path, typer.Argument(help="Expression file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "sigscore-report.html"
    ),
    reference: ReferenceOpt = None,
    definition: DefinitionOpt = None,
    method: MethodOpt = None,
    signatures: SignaturesOpt = None,
    tier: TierOpt = "extended",
    layer: LayerOpt = None,
    genes_axis: GenesAxisOpt = "auto",
    id_type: IdTypeOpt = "auto",
    title: Annotated[str | None, typer.Option("--title", help="Report title.")] = None,
    progress: ProgressOpt = None,
) -> None:
    """A self-contained HTML report (index, contributions, heatmap, coverage, manifest)."""
    from ...report import write_report
    from ...scoring.options import library_kwargs

    (path,) = check_inputs([input])
    method = check_method(method)
    id_type = check_id_type(id_type)
    expr = read_input(path, genes_axis=genes_axis, layer=layer)
    written = write_report(
        expr,
        output,
        signatures=str(signatures) if signatures is not None else None,
        method=method,
        reference=str(reference) if reference is not None else None,
        definition=str(definition) if definition is not None else None,
        input_paths=[path],
        title=title,
        **library_kwargs(tier=check_tier(tier), id_type=id_type, progress=progress),
    )
    report_written([written])
