"""``demo``: the main job on the bundled example (scores, index, HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..app import DISCLAIMER
from ..errors import handle_errors
from ..inputs import read_input, stamp_checksum
from ..output import result_meta


@handle_errors
def demo(
    outdir: Annotated[
        Path, typer.Option("--outdir", "-o", help="Where to write the demo outputs.")
    ] = Path("sigscore-demo"),
) -> None:
    """Run the main job on the bundled example: module scores, index and HTML report."""
    from ...example import example_labels_path, example_path
    from ...index.options import score_or_index
    from ...io.results import write_table
    from ...report import write_report

    src = example_path()
    typer.echo(f"example: {src.name} (synthetic HCC-like cohort, genes × samples, log2(TPM+1))")
    expr = read_input(src, genes_axis="rows")
    outdir.mkdir(parents=True, exist_ok=True)
    scores = stamp_checksum(score_or_index(expr), src)
    idx = stamp_checksum(score_or_index(expr, index=True), src)
    scores_path, index_path, report_path = (
        outdir / "scores.csv",
        outdir / "index.csv",
        outdir / "report.html",
    )
    write_table(scores, scores_path, result_meta(scores))
    write_table(idx, index_path, result_meta(idx))
    write_report(
        expr,
        report_path,
        input_paths=[src],
        title="sigscore demo: bundled synthetic cohort",
        index_result=idx,
        scores=scores,
    )
    typer.echo(f"scored {expr.shape[0]} samples × {expr.shape[1]} genes")
    top = idx["index"].sort_values(ascending=False)
    typer.echo("highest index: " + ", ".join(f"{s} {v:.2f}" for s, v in top.head(3).items()))
    typer.echo(f"module scores:  {scores_path}")
    typer.echo(f"index:          {index_path}")
    typer.echo(f"report:         {report_path}  (open in a browser)")
    typer.echo(f"planted labels: {example_labels_path()}")
    typer.echo(DISCLAIMER)
