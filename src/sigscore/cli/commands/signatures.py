"""``signatures list|show|export``: the shipped (or a user's) signature set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ...errors import UsageError
from ..errors import handle_errors, report_written
from ..inputs import load_sigset
from ..options import SignaturesOpt, TierOpt, check_choice


def gene_fields(entry: Any) -> dict[str, Any]:
    """A signature gene as a dict (symbol, direction, weight, tier, evidence)."""
    if isinstance(entry, dict):
        return entry
    if hasattr(entry, "to_dict"):
        return entry.to_dict()
    return {k: getattr(entry, k, None) for k in ("symbol", "direction", "weight", "tier")}


@handle_errors
def signatures_list(tier: TierOpt = "extended", signatures: SignaturesOpt = None) -> None:
    """One line per module: name, genes up/down/context, title."""
    sigset = load_sigset(tier, signatures)
    typer.echo(f"{'module':<28} {'up':>4} {'down':>5} {'ctx':>4}  title")
    for name in sigset.names:
        sig = sigset[name]
        dirs = [str(gene_fields(g).get("direction", "up")) for g in sig.genes]
        title = getattr(sig, "title", "") or ""
        typer.echo(
            f"{name:<28} {dirs.count('up'):>4} {dirs.count('down'):>5} "
            f"{dirs.count('context'):>4}  {title}"
        )
    typer.echo(f"# {len(sigset.names)} modules, tier {tier}, hash {sigset.content_hash}")


@handle_errors
def signatures_show(
    name: Annotated[str, typer.Argument(help="Module name (see `sigscore signatures list`).")],
    tier: TierOpt = "extended",
    signatures: SignaturesOpt = None,
) -> None:
    """Every gene of one module with direction, weight, tier and evidence."""
    sigset = load_sigset(tier, signatures)
    if name not in list(sigset.names):
        raise UsageError(f"no module named {name!r}; available: {', '.join(sigset.names)}")
    sig = sigset[name]
    typer.echo(f"{name}: {getattr(sig, 'title', '') or ''}")
    if getattr(sig, "description", None):
        typer.echo(str(sig.description).strip())
    typer.echo(f"{'symbol':<12} {'dir':<8} {'weight':>6} {'tier':<9} evidence")
    for g in sig.genes:
        f = gene_fields(g)
        ev = f.get("evidence") or {}
        if isinstance(ev, dict) and ev:
            refs = ",".join(str(r) for r in ev.get("refs") or [])
            ev_text = f"review §{ev.get('section', '?')} [{refs}]: {ev.get('summary', '')}"
        else:
            ev_text = str(f.get("source") or "")
        weight = f.get("weight")
        weight_text = f"{float(weight):>6.2f}" if weight is not None else f"{'':>6}"
        typer.echo(
            f"{f.get('symbol', ''):<12} {f.get('direction', ''):<8} {weight_text} "
            f"{f.get('tier', '') or '':<9} {ev_text}"
        )


@handle_errors
def signatures_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="gmt or yaml.")] = "gmt",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
    tier: TierOpt = "extended",
    signatures: SignaturesOpt = None,
) -> None:
    """Export the signatures as GMT (for GSEA and other tools) or YAML."""
    fmt = check_choice(fmt, ("gmt", "yaml"), "--format")
    sigset = load_sigset(tier, signatures)
    text = sigset.to_gmt() if fmt == "gmt" else sigset.to_yaml()
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    report_written([output])
